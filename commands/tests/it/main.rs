//! One test binary for the commands crate (faster to build and link).
mod conformance;
mod feed_gaps;
mod leadership;
mod units;
