//! Unit tests of the data engine (pure: no sockets).

mod diff;
