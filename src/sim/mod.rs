//! Placeholder: see README.md for what exists.
