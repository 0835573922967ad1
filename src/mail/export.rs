//! Export (filled in below).
