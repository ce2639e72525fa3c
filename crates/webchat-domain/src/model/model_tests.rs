use super::*;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------
// Email
// ---------------------------------------------------------------------------------------

#[test]
fn email_accepts_ordinary_addresses() {
    for raw in [
        "alex@gmail.com",
        "first.last+tag@mail.example.co.uk",
        "o'neil_99-x@sub-domain.example.org",
        "Alex@Gmail.COM",
    ] {
        assert_eq!(Email::parse(raw).map(|e| e.as_str().to_owned()), Ok(raw.to_owned()), "{raw}");
    }
}

#[test]
fn email_is_trimmed_of_surrounding_whitespace() {
    assert_eq!(Email::parse("  alex@gmail.com \n").map(|e| e.to_string()), Ok("alex@gmail.com".into()));
}

#[test]
fn email_refuses_malformed_addresses() {
    for raw in [
        "",
        "   ",
        "alex",
        "alex@",
        "@gmail.com",
        "alex@gmail",
        "alex@gmail.c",
        "alex@gmail.c0m",
        "alex@@gmail.com",
        "al ex@gmail.com",
        "alex@gm ail.com",
        ".alex@gmail.com",
        "alex.@gmail.com",
        "al..ex@gmail.com",
        "alex@.gmail.com",
        "alex@gmail..com",
        "alex@-gmail.com",
        "alex@gmail-.com",
        "alex@gmail_x.com",
        "a<b>@gmail.com",
    ] {
        assert_eq!(Email::parse(raw), Err(InvalidValue("Enter a valid email address.".into())), "{raw:?}");
    }
}

/// An address of exactly `len` characters (len >= 198): a 64-character local part and
/// labels of 63, 63 and the rest, then `.com`.
fn email_of_len(len: usize) -> String {
    let local = "l".repeat(64);
    let third = len - 64 - 1 - (63 + 1 + 63 + 1) - 4;
    format!("{local}@{}.{}.{}.com", "a".repeat(63), "b".repeat(63), "c".repeat(third))
}

#[test]
fn email_of_254_characters_is_accepted_and_255_refused() {
    let longest = email_of_len(254);
    assert_eq!(longest.chars().count(), 254);
    assert!(Email::parse(&longest).is_ok());

    let too_long = email_of_len(255);
    assert_eq!(too_long.chars().count(), 255);
    assert!(Email::parse(&too_long).is_err());
}

#[test]
fn email_with_a_local_part_over_64_characters_is_refused() {
    assert!(Email::parse(&format!("{}@gmail.com", "l".repeat(64))).is_ok());
    assert!(Email::parse(&format!("{}@gmail.com", "l".repeat(65))).is_err());
}

#[test]
fn email_is_kept_as_typed_and_normalized_to_lowercase() {
    let email = Email::parse("Alex.Smith@Gmail.COM").expect("a valid email");
    assert_eq!(email.as_str(), "Alex.Smith@Gmail.COM");
    assert_eq!(email.normalized(), "alex.smith@gmail.com");
    assert_eq!(email.normalized(), Email::parse("alex.smith@gmail.com").expect("valid").normalized());
}

// ---------------------------------------------------------------------------------------
// Username
// ---------------------------------------------------------------------------------------

#[test]
fn username_of_3_to_32_characters_is_accepted() {
    for raw in ["abc", "alex", "a_b.c-d", "User_01", "élodie", &"x".repeat(32)] {
        assert_eq!(Username::parse(raw).map(|u| u.to_string()), Ok(raw.to_owned()), "{raw}");
    }
}

#[test]
fn username_shorter_than_3_or_longer_than_32_characters_is_refused() {
    for raw in ["", "ab", &"x".repeat(33)] {
        assert_eq!(
            Username::parse(raw),
            Err(InvalidValue("Ensure this field has 3 to 32 characters.".into())),
            "{raw}"
        );
    }
}

#[test]
fn username_length_is_counted_in_characters() {
    // 32 two-byte letters: 64 bytes but 32 characters.
    assert!(Username::parse(&"é".repeat(32)).is_ok());
    assert!(Username::parse(&"é".repeat(33)).is_err());
}

#[test]
fn username_outside_the_alphabet_is_refused() {
    for raw in ["al ex", "alex!", "al@ex", "a/b/c", " alex", "alex\n", "ab+c"] {
        assert_eq!(
            Username::parse(raw),
            Err(InvalidValue("Enter a valid username: letters, digits, and _ . - only.".into())),
            "{raw:?}"
        );
    }
}

#[test]
fn username_is_normalized_to_lowercase() {
    assert_eq!(Username::parse("Alex_X").expect("valid").normalized(), "alex_x");
}

// ---------------------------------------------------------------------------------------
// Password
// ---------------------------------------------------------------------------------------

#[test]
fn password_of_7_bytes_is_refused() {
    assert_eq!(
        Password::parse("1234567"),
        Err(InvalidValue("This password is too short. It must contain at least 8 characters.".into()))
    );
}

#[test]
fn password_of_8_bytes_is_accepted() {
    assert_eq!(Password::parse("12345678").map(|p| p.expose().to_owned()), Ok("12345678".into()));
}

#[test]
fn password_of_72_bytes_is_accepted() {
    let raw = "p".repeat(72);
    assert_eq!(Password::parse(&raw).map(|p| p.expose().to_owned()), Ok(raw));
}

#[test]
fn password_of_73_bytes_is_refused_not_truncated() {
    assert_eq!(
        Password::parse(&"p".repeat(73)),
        Err(InvalidValue("This password is too long. It must be at most 72 bytes.".into()))
    );
}

#[test]
fn password_length_is_counted_in_bytes_not_characters() {
    // "é" is two bytes in UTF-8.
    assert!(Password::parse(&"é".repeat(4)).is_ok(), "4 characters, 8 bytes");
    assert!(Password::parse(&format!("{}a", "é".repeat(3))).is_err(), "4 characters, 7 bytes");
    assert!(Password::parse(&"é".repeat(36)).is_ok(), "36 characters, 72 bytes");
    assert!(Password::parse(&"é".repeat(37)).is_err(), "37 characters, 74 bytes");
    // 19 four-byte emoji: 19 characters, 76 bytes.
    assert!(Password::parse(&"🔑".repeat(19)).is_err());
}

#[test]
fn password_debug_output_hides_the_secret() {
    let password = Password::parse("hunter2-secret").expect("a valid password");
    let shown = format!("{password:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert_eq!(shown, "Password(***)");

    let hash = PasswordHash("$2b$12$secrethash".into());
    assert!(!format!("{hash:?}").contains("secret"));
}

// ---------------------------------------------------------------------------------------
// RoomName
// ---------------------------------------------------------------------------------------

#[test]
fn room_name_of_1_to_64_characters_is_accepted() {
    for raw in ["a", "general", "team_1.dev-ops", "Café", &"r".repeat(64)] {
        assert_eq!(RoomName::parse(raw).map(|r| r.to_string()), Ok(raw.to_owned()), "{raw}");
    }
}

#[test]
fn room_name_empty_or_longer_than_64_characters_is_refused() {
    for raw in ["", &"r".repeat(65)] {
        assert_eq!(
            RoomName::parse(raw),
            Err(InvalidValue("Ensure the room name has 1 to 64 characters.".into())),
            "{raw}"
        );
    }
}

#[test]
fn room_name_of_dots_alone_is_refused() {
    for raw in [".", "..", "..."] {
        assert!(RoomName::parse(raw).is_err(), "{raw}");
    }
    assert!(RoomName::parse(".hidden.").is_ok());
}

#[test]
fn room_name_outside_the_alphabet_is_refused() {
    for raw in ["my room", "a/b", "../etc", "room?", "#general", "room%20"] {
        assert_eq!(
            RoomName::parse(raw),
            Err(InvalidValue("Enter a valid room name: letters, digits, and _ . - only.".into())),
            "{raw:?}"
        );
    }
}

#[test]
fn room_name_keeps_its_spelling_and_is_normalized_to_lowercase() {
    let name = RoomName::parse("General").expect("valid");
    assert_eq!(name.as_str(), "General");
    assert_eq!(name.normalized(), "general");
}

// ---------------------------------------------------------------------------------------
// MessageContent
// ---------------------------------------------------------------------------------------

#[test]
fn message_content_blank_or_only_whitespace_is_refused() {
    for raw in ["", " ", "   \t\n\r ", "\u{3000}"] {
        assert_eq!(
            MessageContent::parse(raw),
            Err(InvalidValue("This field may not be blank.".into())),
            "{raw:?}"
        );
    }
}

#[test]
fn message_content_is_kept_as_typed() {
    assert_eq!(MessageContent::parse("  hi  ").map(|c| c.as_str().to_owned()), Ok("  hi  ".into()));
}

#[test]
fn message_content_of_4000_characters_is_accepted_and_4001_refused() {
    assert!(MessageContent::parse(&"m".repeat(4000)).is_ok());
    assert_eq!(
        MessageContent::parse(&"m".repeat(4001)),
        Err(InvalidValue("Ensure this field has no more than 4000 characters.".into()))
    );
}

#[test]
fn message_content_length_is_counted_in_characters() {
    // 4000 three-byte characters: 12000 bytes, still 4000 characters.
    assert!(MessageContent::parse(&"語".repeat(4000)).is_ok());
    assert!(MessageContent::parse(&"語".repeat(4001)).is_err());
}

// ---------------------------------------------------------------------------------------
// ClientMsgId
// ---------------------------------------------------------------------------------------

#[test]
fn client_msg_id_of_1_to_64_visible_ascii_characters_is_accepted() {
    for raw in ["c", "c-1", "550e8400-e29b-41d4-a716-446655440000", "!~{}", &"k".repeat(64)] {
        assert_eq!(ClientMsgId::parse(raw).map(|c| c.as_str().to_owned()), Ok(raw.to_owned()));
    }
}

#[test]
fn client_msg_id_empty_too_long_or_not_visible_ascii_is_refused() {
    for raw in ["", &"k".repeat(65), "c 1", "c\t1", "é", "c-1\n"] {
        assert_eq!(
            ClientMsgId::parse(raw),
            Err(InvalidValue("Ensure this field has 1 to 64 visible ASCII characters.".into())),
            "{raw:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Page, Seq, ids
// ---------------------------------------------------------------------------------------

#[test]
fn page_limit_of_0_or_over_200_is_refused() {
    for limit in [0, 201, u32::MAX] {
        assert_eq!(
            Page::new(limit, 0),
            Err(InvalidValue("Ensure this value is between 1 and 200.".into())),
            "{limit}"
        );
    }
}

#[test]
fn page_limit_of_1_to_200_is_accepted_with_any_offset() {
    assert_eq!(Page::new(1, 0), Ok(Page { limit: 1, offset: 0 }));
    assert_eq!(Page::new(200, 5_000), Ok(Page { limit: 200, offset: 5_000 }));
}

#[test]
fn seq_next_is_one_more() {
    assert_eq!(Seq::ZERO.next(), Seq(1));
    assert_eq!(Seq(41).next(), Seq(42));
    assert!(Seq(41) < Seq(41).next());
}

#[test]
fn user_id_parse_of_a_malformed_id_is_none() {
    for raw in [
        "",
        "42",
        "not-a-uuid",
        "550e8400-e29b-41d4-a716-44665544000",
        "550e8400-e29b-41d4-a716-44665544000g",
    ] {
        assert_eq!(UserId::parse(raw), None, "{raw:?}");
        assert_eq!(SessionId::parse(raw), None, "{raw:?}");
    }
}

#[test]
fn user_id_parses_and_displays_the_hyphenated_uuid() {
    let raw = "550e8400-e29b-41d4-a716-446655440000";
    let id = UserId::parse(raw).expect("a valid uuid");
    assert_eq!(id, UserId(Uuid::from_u128(0x550e_8400_e29b_41d4_a716_4466_5544_0000)));
    assert_eq!(id.to_string(), raw);
    assert_eq!(UserId::parse("550E8400-E29B-41D4-A716-446655440000"), Some(id));
}

// ---------------------------------------------------------------------------------------
// LatestMessages
// ---------------------------------------------------------------------------------------

fn message_with_seq(seq: i64) -> Message {
    Message {
        id: MessageId(seq),
        room_id: RoomId(1),
        room: RoomName::parse("general").expect("a room name"),
        seq: Seq(seq),
        sender_id: None,
        sender: None,
        content: MessageContent::parse("hi").expect("content"),
        created_at: chrono::DateTime::UNIX_EPOCH,
        client_msg_id: None,
    }
}

#[test]
fn latest_messages_show_only_the_last_ones_of_a_shared_list() {
    let shared: std::sync::Arc<[Message]> = (1..=5).map(message_with_seq).collect();
    let seqs = |l: &LatestMessages| l.iter().map(|m| m.seq.0).collect::<Vec<_>>();

    assert_eq!(seqs(&LatestMessages::last_of(shared.clone(), 2)), [4, 5]);
    assert_eq!(seqs(&LatestMessages::last_of(shared.clone(), 5)), [1, 2, 3, 4, 5]);
    assert_eq!(seqs(&LatestMessages::last_of(shared.clone(), 50)), [1, 2, 3, 4, 5], "fewer exist");
    assert!(LatestMessages::last_of(shared, 0).is_empty());
    assert!(LatestMessages::default().is_empty());
}

#[test]
fn latest_messages_are_equal_when_they_hold_the_same_messages() {
    let shared: std::sync::Arc<[Message]> = (1..=3).map(message_with_seq).collect();
    let copied = LatestMessages::from(vec![message_with_seq(2), message_with_seq(3)]);

    assert_eq!(LatestMessages::last_of(shared.clone(), 2), copied);
    assert_ne!(LatestMessages::last_of(shared, 3), copied);
}
