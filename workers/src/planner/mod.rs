//! Planner work: keyword text handling and clustering.

pub mod clustering;
pub mod text;
