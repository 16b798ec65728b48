//! Encodings 1.0 and 1.1: input and output streams.
