from headless_wan.cli import main

# Guarded: the executor process is spawned, and spawning re-imports the main module.
if __name__ == "__main__":
    raise SystemExit(main())
