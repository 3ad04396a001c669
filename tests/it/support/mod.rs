pub mod env;
pub mod kafka;
pub mod proc;
pub mod rules;
