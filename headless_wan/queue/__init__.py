"""Queue clients behind one protocol. Importing this package never imports torch."""
