//! A real WebSocket client for the tests (tokio-tungstenite over loopback).

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const WAIT: Duration = Duration::from_secs(10);

pub struct WsClient {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How a connection attempt ended.
pub enum Connect {
    Open(Box<WsClient>),
    /// The upgrade was refused with this HTTP status.
    Refused(u16),
}

pub async fn try_connect(port: u16, path: &str) -> Connect {
    let url = format!("ws://127.0.0.1:{port}{path}");
    let req = url.into_client_request().expect("request");
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Connect::Open(Box::new(WsClient { ws })),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Connect::Refused(resp.status().as_u16()),
        Err(e) => panic!("connect {path}: {e}"),
    }
}

pub async fn connect(port: u16, path: &str) -> WsClient {
    match try_connect(port, path).await {
        Connect::Open(c) => *c,
        Connect::Refused(status) => panic!("upgrade of {path} refused with {status}"),
    }
}

impl WsClient {
    pub async fn send(&mut self, v: Value) {
        self.ws.send(WsMessage::text(v.to_string())).await.expect("send");
    }

    pub async fn send_raw(&mut self, text: String) {
        self.ws.send(WsMessage::text(text)).await.expect("send");
    }

    /// An unsolicited protocol Pong: a sign of life that reads nothing.
    pub async fn pong(&mut self) {
        self.ws.send(WsMessage::Pong(Vec::new().into())).await.expect("send");
    }

    /// The next JSON frame, or `None` when the connection closed (with its close code).
    pub async fn next(&mut self) -> Result<Value, Option<u16>> {
        loop {
            let item = tokio::time::timeout(WAIT, self.ws.next()).await.expect("a frame within the wait");
            match item {
                Some(Ok(WsMessage::Text(t))) => return Ok(serde_json::from_str(&t).expect("JSON frame")),
                Some(Ok(WsMessage::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Err(None),
            }
        }
    }

    pub async fn frame(&mut self) -> Value {
        match self.next().await {
            Ok(v) => v,
            Err(code) => panic!("closed ({code:?}) while a frame was expected"),
        }
    }

    /// The next frame of this type, skipping frames of other types.
    pub async fn expect(&mut self, kind: &str) -> Value {
        loop {
            let f = self.frame().await;
            if f["type"] == kind {
                return f;
            }
        }
    }

    /// Reads until the server closes; returns the close code.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            match self.next().await {
                Ok(_) => {}
                Err(code) => return code,
            }
        }
    }

    /// Asserts nothing but (optionally) presence arrives for a short while.
    pub async fn quiet(&mut self, for_ms: u64) -> Vec<Value> {
        let mut got = Vec::new();
        while let Ok(item) = tokio::time::timeout(Duration::from_millis(for_ms), self.ws.next()).await {
            match item {
                Some(Ok(WsMessage::Text(t))) => got.push(serde_json::from_str(&t).expect("JSON")),
                Some(Ok(_)) => {}
                _ => break,
            }
        }
        got
    }
}
