"""Task handlers: one per task type. They see typed params and a TaskContext, never the queue."""
