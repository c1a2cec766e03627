use super::*;
use proptest::prelude::*;
use rsysmon_event::EventKind;

#[test]
fn requests_round_trip_with_version() {
    for request in [
        Request::Status {},
        Request::Events { last: Some(5), format: Format::Text, filter: Filter::default() },
        Request::Watch {
            format: Format::Json,
            filter: Filter { kinds: [EventKind::ProcessExec].into(), ..Filter::default() },
        },
    ] {
        let line = request_line(&request);
        assert!(line.contains("\"v\":1"), "{line}");
        assert_eq!(parse_request(line.as_bytes()), Ok(request));
    }
}

#[test]
fn bad_requests_say_why() {
    assert_eq!(parse_request(br#"{"op":"status"}"#), Err(ProtocolError::NoVersion));
    assert_eq!(parse_request(br#"{"v":2,"op":"status"}"#), Err(ProtocolError::Version { got: 2 }));
    assert_eq!(parse_request(b"\xff\xfe"), Err(ProtocolError::NotUtf8));
    assert!(matches!(parse_request(b"{nope"), Err(ProtocolError::BadJson(_))));
    assert!(matches!(parse_request(br#"{"v":1,"op":"reboot"}"#), Err(ProtocolError::BadRequest(_))));
    assert!(matches!(parse_request(br#"{"v":1,"op":"status","extra":1}"#), Err(ProtocolError::BadRequest(_))));
    assert!(matches!(parse_request(br#"[1,2]"#), Err(ProtocolError::BadRequest(_))));
    assert_eq!(parse_request(&vec![b' '; MAX_REQUEST_BYTES]), Err(ProtocolError::TooLong));
}

#[test]
fn line_reader_stops_at_the_limit_without_buffering_more() {
    let mut input = io::BufReader::with_capacity(8, &b"short\nthis line is far too long\nnext\n"[..]);
    assert_eq!(read_line_limited(&mut input, 10).unwrap(), Some(b"short".to_vec()));
    let err = read_line_limited(&mut input, 10).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    let mut tail = io::BufReader::new(&b"no newline"[..]);
    assert_eq!(read_line_limited(&mut tail, 100).unwrap(), Some(b"no newline".to_vec()));
    assert_eq!(read_line_limited(&mut tail, 100).unwrap(), None);
}

proptest! {
    #[test]
    fn the_parser_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_request(&bytes);
    }

    #[test]
    fn the_parser_never_panics_on_json_like_text(text in r#"\{("v"|"op"|"last"|"filter"|"kinds"|"format"|[a-z]{1,5}|:|,|[0-9]{1,20}|-|"|\[|\]|\{|\}|null|true| )*\}?"#) {
        let _ = parse_request(text.as_bytes());
    }

    #[test]
    fn the_line_reader_never_returns_more_than_the_limit(bytes in proptest::collection::vec(any::<u8>(), 0..2048), cap in 1usize..64) {
        let mut reader = io::BufReader::with_capacity(cap, &bytes[..]);
        while let Ok(Some(line)) = read_line_limited(&mut reader, 100) {
            prop_assert!(line.len() < 100);
        }
    }
}
