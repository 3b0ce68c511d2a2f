"""The worker loop and what runs beside it (heartbeat, signals, progress). No SQL, HTTP or torch here."""
