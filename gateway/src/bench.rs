//! `igny8 bench` (filled in below).
use crate::config::Settings;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {}

pub async fn run(_s: &Settings, _a: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
