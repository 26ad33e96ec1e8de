//! Planner work: keyword text handling, clustering and its strategies.

pub mod clustering;
pub mod strategy;
pub mod text;
