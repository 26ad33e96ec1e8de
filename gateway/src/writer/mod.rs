//! Writer over HTTP: tasks (what to write), content generation jobs, the
//! content with every version (edit, revert, status, regenerate, diff).
//!
//! Route → `igny8_commands::writer` (tasks, content, generation) →
//! `igny8_domain::writer` (`Task`, `Content`, `PrimaryKeyword` decide) →
//! events → `igny8_projections::writer` (`rm_tasks`, `rm_content`) → the
//! lists here; versions are read from the content's events. Images
//! (`images`): prompts, image jobs, files.

pub mod content;
pub mod images;
pub mod settings;
pub mod tasks;

use crate::state::AppState;
use axum::Router;

/// The writer's use-case dependencies over this state.
macro_rules! writer {
    ($s:expr) => {
        igny8_commands::writer::Writer {
            bus: &$s.bus,
            planner: &igny8_projections::planner::Lookup(&$s.db),
        }
    };
}
pub(crate) use writer;

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    // Image routes first: their literal segments (`extract_image_prompts`,
    // `auto_generate_images`) sit beside the `{id}` routes of content and tasks.
    settings::routes(content::routes(tasks::routes(images::routes(r))))
}
