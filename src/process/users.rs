//! How user state is keyed, checked at start. Users are keyed by
//! `project:user` and the layout record says so, with the project of every
//! app. State written before projects (keyed `app:user`) must be re-keyed by
//! `postback state rescale` before a processor runs on it, and an app may
//! not move to another project: either would silently count every user of
//! it again (a second "new user" postback for each).

use super::ProcessError;
use crate::config::Config;
use crate::kafka::admin;
use crate::kafka::layout::{self, StateLayout, UserKeys};

/// Checks the recorded layout against the config; records the layout
/// (user keys, projects of new apps) when it is new or grew.
pub fn check(
    configured: &Config,
    fixed: &Config,
    recorded: Option<StateLayout>,
    generation: u32,
    topics: &admin::Layout,
) -> Result<(), ProcessError> {
    let wanted = layout::projects_of(configured);
    let (mut next, fresh) = match recorded {
        Some(l) if l.user_keys == UserKeys::Project => (l, false),
        _ => {
            let changelog = &fixed.topics.user_changelog;
            if admin::holds_records(fixed, changelog)? {
                return Err(ProcessError::UsersKeyedByApp { topic: changelog.clone() });
            }
            let new = StateLayout {
                generation,
                device_partitions: topics.device_state,
                user_partitions: topics.user_activity,
                user_keys: UserKeys::Project,
                projects: Default::default(),
            };
            (new, true)
        }
    };
    let before = next.clone();
    for (app, project) in wanted {
        match next.projects.get(&app) {
            Some(was) if *was != project => {
                return Err(ProcessError::ProjectMoved { app, from: was.clone(), to: project });
            }
            Some(_) => {}
            None => {
                next.projects.insert(app, project);
            }
        }
    }
    if fresh || next != before {
        layout::write(configured, &next)?;
        tracing::info!(generation, apps = next.projects.len(), "state layout recorded");
    }
    Ok(())
}
