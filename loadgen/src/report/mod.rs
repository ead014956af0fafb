//! `loadgen report`: the report formats come from `pushpoll_report::render`; this module adds the
//! command that re-renders result folders ([`command`]).

pub mod command;

pub use pushpoll_report::render::*;
