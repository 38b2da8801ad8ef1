"""Speech: audio in, a diarized, word-timed transcript (a ``Call``) out."""
