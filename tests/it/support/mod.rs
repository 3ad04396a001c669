pub mod env;
pub mod kafka;
pub mod partner;
pub mod proc;
pub mod registry;
pub mod rules;
pub mod secure;
pub mod tls;
