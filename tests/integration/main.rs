//! Integration tests: the real `findemo` binary against a real Docker engine and the
//! test-bed images (tests/testbed/build.sh). One test binary keeps link time down.
//!
//! Each test runs its own stack (own name, own ports, own state directory), so tests
//! can run in parallel and never touch a user's stack.

mod browser;
mod harness;

mod bench;
mod dashboard;
mod dialect;
mod errors;
mod external;
mod faults;
mod generate;
mod kafka;
mod lifecycle;
mod pipeline;
mod restart;
