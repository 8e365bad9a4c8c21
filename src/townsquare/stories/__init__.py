"""Stories: what is happening in the stream (trends, events)."""
