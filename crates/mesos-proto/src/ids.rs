//! Short constructors for the id messages, which all wrap one string.

use crate::v1;

macro_rules! id_constructor {
    ($fn_name:ident, $ty:ident) => {
        #[doc = concat!("A `", stringify!($ty), "` holding `value`.")]
        pub fn $fn_name(value: impl Into<String>) -> v1::$ty {
            v1::$ty {
                value: value.into(),
            }
        }
    };
}

id_constructor!(framework_id, FrameworkId);
id_constructor!(offer_id, OfferId);
id_constructor!(agent_id, AgentId);
id_constructor!(task_id, TaskId);
id_constructor!(executor_id, ExecutorId);
