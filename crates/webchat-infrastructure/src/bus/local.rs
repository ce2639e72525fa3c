use std::sync::{Arc, RwLock};
use webchat_domain::model::{Event, RoomId};
use webchat_domain::ports::{BusHealth, EventSink, MessageBus};

/// The in-process bus of a single node: `publish` hands the event straight to this
/// node's sink, on the publisher's thread. Nothing is serialized or copied.
#[derive(Default)]
pub struct LocalBus {
    sink: RwLock<Option<Arc<dyn EventSink>>>,
}

impl std::fmt::Debug for LocalBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalBus")
    }
}

impl MessageBus for LocalBus {
    fn publish(&self, event: Event) {
        let sink = self.sink.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if let Some(sink) = sink {
            sink.deliver(&event);
        }
    }

    fn attach(&self, sink: Arc<dyn EventSink>) {
        *self.sink.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(sink);
    }

    fn watch_room(&self, _room: RoomId) {}

    fn unwatch_room(&self, _room: RoomId) {}

    fn health(&self) -> BusHealth {
        BusHealth::Local
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use webchat_domain::model::SessionId;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<Event>>);

    impl EventSink for Recorder {
        fn deliver(&self, event: &Event) {
            self.0.lock().expect("lock").push(event.clone());
        }
    }

    #[test]
    fn published_events_reach_the_attached_sink_in_order() {
        let bus = LocalBus::default();
        bus.publish(Event::SessionsRevoked(vec![])); // before attach: nowhere to go
        let sink = Arc::new(Recorder::default());
        bus.attach(sink.clone());
        let a = Event::SessionsRevoked(vec![SessionId(uuid::Uuid::new_v4())]);
        let b = Event::SessionsRevoked(vec![SessionId(uuid::Uuid::new_v4())]);
        bus.publish(a.clone());
        bus.publish(b.clone());
        assert_eq!(*sink.0.lock().expect("lock"), vec![a, b]);
    }
}
