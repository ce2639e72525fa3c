//! The tables, one definition for both backends (see migrations/ for each backend's DDL).

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        username_lower -> Text,
        email -> Text,
        email_lower -> Text,
        password_hash -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        refresh_jti -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    rooms (id) {
        id -> BigInt,
        name -> Text,
        name_lower -> Text,
        created_at -> BigInt,
        last_seq -> BigInt,
        last_activity_at -> BigInt,
        members_rev -> BigInt,
    }
}

diesel::table! {
    memberships (room_id, user_id) {
        room_id -> BigInt,
        user_id -> Text,
        joined_at -> BigInt,
        last_read_seq -> BigInt,
    }
}

diesel::table! {
    messages (id) {
        id -> BigInt,
        room_id -> BigInt,
        seq -> BigInt,
        sender_id -> Nullable<Text>,
        content -> Text,
        created_at -> BigInt,
        client_msg_id -> Nullable<Text>,
    }
}

diesel::table! {
    presence (node_id, room_id, user_id) {
        node_id -> Text,
        room_id -> BigInt,
        user_id -> Text,
        seen_at -> BigInt,
    }
}

diesel::table! {
    settings (key) {
        key -> Text,
        value -> Text,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(memberships -> rooms (room_id));
diesel::joinable!(messages -> users (sender_id));
diesel::joinable!(messages -> rooms (room_id));
diesel::joinable!(presence -> rooms (room_id));
diesel::joinable!(presence -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    rooms,
    memberships,
    messages,
    presence,
    settings
);
