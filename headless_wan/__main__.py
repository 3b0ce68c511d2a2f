from headless_wan.cli import main

raise SystemExit(main())
