//! `postback demo` on librdkafka's mock cluster, end to end.

use crate::support::demo::check_demo;

#[test]
fn the_demo_summary_matches_the_jobs_it_produced() {
    check_demo(&[]);
}
