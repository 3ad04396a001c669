//! Integration tests: one binary, one module per area.

mod support;

mod properties;
mod scenarios;
