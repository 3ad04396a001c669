//! The demo: a synthetic event stream (and, with the pipeline, the embedded
//! broker and partner endpoint).

pub mod generator;
