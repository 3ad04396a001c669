//! The processor's two stateful stages and their partitions.
//!
//! A [`Stage`] owns one input topic, one compacted changelog topic and one
//! kind of state store: the device stage reads `topics.events` and keeps
//! device state, the user stage reads `topics.user_activity` and keeps user
//! state. Everything that differs between them is asked of the stage here
//! (topics, names) or of its [`super::step::StageStep`] (state codec,
//! rules); nothing else matches on device vs user.

use crate::config::TopicsConfig;
use crate::telemetry::StoreName;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// Events keyed by device: device rules and device state.
    Device,
    /// Events with a user id, repartitioned by user: user rules and state.
    User,
}

impl Stage {
    /// In processing order: a batch runs the device stage before the user
    /// stage (the device stage feeds the user stage's topic).
    pub const ALL: [Stage; 2] = [Stage::Device, Stage::User];

    /// `device` or `user`: store directories, metric labels, log fields.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Device => "device",
            Stage::User => "user",
        }
    }

    pub fn input(self, topics: &TopicsConfig) -> &str {
        match self {
            Stage::Device => &topics.events,
            Stage::User => &topics.user_activity,
        }
    }

    pub fn changelog(self, topics: &TopicsConfig) -> &str {
        match self {
            Stage::Device => &topics.device_changelog,
            Stage::User => &topics.user_changelog,
        }
    }

    /// Position in [`Stage::ALL`], for per-stage arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The stage whose input `topic` is.
    pub fn of_input(topics: &TopicsConfig, topic: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.input(topics) == topic)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which topic a stage's records come via. The device stage reads its
/// input (`topics.events`) and, for input records that were not on their
/// state partition, the repartition topic (`topics.device_events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Via {
    Input,
    Repartition,
}

/// A partition that feeds a stage: offsets are positions in a feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Feed {
    pub stage: Stage,
    pub via: Via,
    pub partition: i32,
}

impl Feed {
    pub fn input(part: Part) -> Feed {
        Feed { stage: part.stage, via: Via::Input, partition: part.partition }
    }

    pub fn repartition(partition: i32) -> Feed {
        Feed { stage: Stage::Device, via: Via::Repartition, partition }
    }

    pub fn topic(self, topics: &TopicsConfig) -> &str {
        match self.via {
            Via::Input => self.stage.input(topics),
            Via::Repartition => &topics.device_events,
        }
    }

    /// The feed `topic`/`partition` is, if it feeds a stage.
    pub fn of(topics: &TopicsConfig, topic: &str, partition: i32) -> Option<Feed> {
        if topic == topics.device_events {
            return Some(Feed::repartition(partition));
        }
        Stage::of_input(topics, topic).map(|stage| Feed { stage, via: Via::Input, partition })
    }
}

/// One state partition of a stage: the changelog partition of that number
/// and the store that holds its state. Fed by the input partition of the
/// same number (records already on their state partition) and, for the
/// device stage, by the repartition topic's partition of that number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Part {
    pub stage: Stage,
    pub partition: i32,
}

impl Part {
    pub fn new(stage: Stage, partition: i32) -> Part {
        Part { stage, partition }
    }

    /// How readiness reasons name its store.
    pub fn store_name(self) -> StoreName {
        StoreName { stage: self.stage.name(), partition: self.partition }
    }

    /// The store's directory: `<state_dir>/device-3`.
    pub fn store_path(self, state_dir: &Path) -> PathBuf {
        state_dir.join(self.to_string())
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.stage.name(), self.partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_own_their_topics_and_directories() {
        let t = TopicsConfig::default();
        assert_eq!(Stage::of_input(&t, "tracker.events"), Some(Stage::Device));
        assert_eq!(Stage::of_input(&t, "postback.user-activity"), Some(Stage::User));
        assert_eq!(Stage::of_input(&t, "postback.jobs"), None);
        assert_eq!(Stage::User.changelog(&t), "postback.user-state-changelog");
        assert!(Stage::ALL.iter().enumerate().all(|(i, s)| s.index() == i));
        let p = Part::new(Stage::Device, 3);
        assert_eq!(p.to_string(), "device-3");
        assert_eq!(p.store_path(Path::new("/s")), PathBuf::from("/s/device-3"));
        assert_eq!(Feed::of(&t, "postback.device-events", 2), Some(Feed::repartition(2)));
        assert_eq!(Feed::of(&t, "tracker.events", 2), Some(Feed::input(Part::new(Stage::Device, 2))));
        assert_eq!(Feed::repartition(2).topic(&t), "postback.device-events");
    }
}
