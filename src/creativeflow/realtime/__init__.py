"""Realtime: WebSocket channels with per-channel sequence numbers, replay and Redis fan-out.

FastAPI leaves WebSocket routes out of the OpenAPI document, so the protocol is described here.

Endpoints
    `WS /api/v1/ws` — channel `user:{user_id}`: the caller's own jobs.
    `WS /api/v1/ws/{project_id}` — channel `subject:{project_id}`: everything about a subject
    (story project, brand, workspace) the caller may read: its jobs, content updates, drafts.

Query parameters
    `token`        an access token or API key (or send it as the first message instead);
    `since`        the last sequence number the client saw on this channel: what it missed is
                   replayed in order, then live messages follow with no gap or duplicate; if
                   the missed messages are no longer kept, one `reload` message comes instead;
    `resource_id`  (repeatable) start narrowed to these job or resource ids.

Client messages (JSON text)
    `{"type": "auth", "token": "..."}`            first message, when the URL has no token
    `{"type": "subscribe", "resource_id": "..."}`   narrow to a job or resource (adds up; at
                                                    most 100); acknowledged with `subscribed`
    `{"type": "unsubscribe", "resource_id": "..."}` acknowledged with `unsubscribed`
    `{"type": "ping"}`                             answered with `pong`
    `{"type": "pong"}`                             an optional answer to the server's `ping`

Server messages: every one is
`{"type", "channel", "sequence", "timestamp", "job_id", "resource_id", "data"}`.
    `connected`            data `{"sequence", "resource_ids", "ping_seconds"}`: the channel's
                           latest sequence (a first `since` for a later reconnect)
    `generation_progress`  data `{"status", "progress", "message", "kind"}`, job_id set
    `task_complete`        data `{"status", "kind", "error_code", "error_message", "asset_ids"}`
    `content_update`       data: the studio's own fields, resource_id = what changed
    `draft_ready`          data: the studio's own fields, resource_id = the draft
    `reload`               data `{"reason", "sequence"}`: fetch current state over HTTP, then
                           continue from `sequence`
    `subscribed` / `unsubscribed`  data `{"resource_ids"}`, resource_id = the one (un)subscribed
    `ping` / `pong`        data `{}`
Channel events have a `sequence`: per channel, growing by one across every process, from a
time-based start (microseconds since the epoch when the channel was created; below 2**53), so
a number kept from before a restart, or from before Redis forgot the channel, is always
smaller and gets a `reload`. A socket narrowed by `subscribe` sees gaps. Connection messages
have `sequence` null.

Close codes (`schemas.CloseCode`): 4400 bad message or parameter, 4401 bad or missing
credential, 4404 subject not found or not readable, 4408 no `auth` in time, 4413 client too
slow (its queue overflowed), 1001 server shutting down, 1011 internal error, 1013 realtime
backend (Redis) unavailable. Each close carries a short reason.

Authentication is checked when the socket opens; a socket stays open after its access token
expires (a new connection needs a valid token).

Publishing: `publishing.py` (`publish_content_update`, `publish_draft_ready`, and the job
events wired in by `connect_job_events`).
"""
