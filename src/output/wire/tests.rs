use super::*;

/// One of every event, with every field set: what the round trip and the
/// documentation check go over.
fn every_event() -> Vec<Event> {
    let s = |x: &str| x.to_string();
    vec![
        Event::RunStarted {
            run: 1,
            product: s("xivo"),
            from: s("1.2.3"),
            to: s("1.2.4"),
            plan_hash: s("ab"),
            steps: 9,
        },
        Event::RunResumed {
            run: 1,
            state: s("applying"),
        },
        Event::RunState {
            run: 1,
            state: s("applying"),
        },
        Event::StepStarted {
            step: s("a@1"),
            n: 1,
            total: 9,
            summary: s("run a"),
        },
        Event::StepFinished {
            step: s("a@1"),
            n: 1,
            state: s("failed"),
            seconds: 0.5,
            error: Some(s("exit 1")),
        },
        Event::StepProgress {
            step: s("a@1"),
            line: s("waiting"),
        },
        Event::UndoStarted {
            step: s("a@1"),
            summary: s("undo a"),
        },
        Event::UndoFinished {
            step: s("a@1"),
            state: s("undone"),
            seconds: 0.25,
            error: Some(s("x")),
        },
        Event::RunFinished {
            run: 1,
            state: s("paused"),
            message: s("m"),
            log: Some(s("/var/lib/hoist/runs/1.log")),
            awaits_person: Some(AwaitsPerson {
                gate: s("g"),
                step: s("g@1"),
                message: s("copy the dump"),
            }),
        },
        Event::UpToDate {
            current: s("1"),
            target: s("1"),
        },
        Event::NothingToRollBack {
            run: Some(1),
            state: Some(s("rolled-back")),
            reason: s("rolled-back"),
            message: s("m"),
        },
        Event::Notice {
            about: s("a"),
            message: s("m"),
        },
        Event::Refused {
            error: s("locked"),
            message: s("m"),
        },
        Event::ActionFinished {
            step: s("x"),
            ok: false,
            error: Some(s("e")),
        },
    ]
}

fn every_fleet_event() -> Vec<FleetEvent> {
    let s = |x: &str| x.to_string();
    let v = || serde_json::json!({ "k": 1 });
    vec![
        FleetEvent::FleetPlan { plan: v() },
        FleetEvent::RolloutStarted {
            rollout: 1,
            tag: s("1-ab"),
        },
        FleetEvent::FleetItem {
            n: 1,
            item: s("batch"),
        },
        FleetEvent::HostStarted { host: s("h") },
        FleetEvent::HostEvent {
            host: s("h"),
            detail: v(),
        },
        FleetEvent::HostFinished {
            host: s("h"),
            ok: true,
            result: v(),
        },
        FleetEvent::HostStepFinished {
            host: s("h"),
            id: s("x"),
            ok: false,
            error: Some(s("e")),
        },
        FleetEvent::RolloutFinished {
            rollout: 1,
            state: s("done"),
            summary: Some(v()),
            seconds: 1.5,
        },
        FleetEvent::FleetRollbackPlan {
            rollout: 1,
            state: s("failed"),
            undos: vec![s("h")],
        },
        FleetEvent::FleetUndoStarted { what: s("h") },
        FleetEvent::FleetUndoFinished {
            what: s("h"),
            host: s("h"),
            state: s("undone"),
            detail: Some(s("d")),
        },
        FleetEvent::RollbackFinished {
            rollout: 1,
            state: Some(s("rolled-back")),
            error: Some(s("e")),
            left: Some(vec![s("x")]),
            summary: Some(v()),
        },
        FleetEvent::Refused {
            error: s("e"),
            message: s("m"),
        },
    ]
}

/// An index per variant, by an exhaustive match: a new variant does not
/// compile until it is counted here (and then `every_event` misses it).
fn which(e: &Event) -> usize {
    match e {
        Event::RunStarted { .. } => 0,
        Event::RunResumed { .. } => 1,
        Event::RunState { .. } => 2,
        Event::StepStarted { .. } => 3,
        Event::StepFinished { .. } => 4,
        Event::StepProgress { .. } => 5,
        Event::UndoStarted { .. } => 6,
        Event::UndoFinished { .. } => 7,
        Event::RunFinished { .. } => 8,
        Event::UpToDate { .. } => 9,
        Event::NothingToRollBack { .. } => 10,
        Event::Notice { .. } => 11,
        Event::Refused { .. } => 12,
        Event::ActionFinished { .. } => 13,
        Event::Unknown => 14,
    }
}

fn which_fleet(e: &FleetEvent) -> usize {
    match e {
        FleetEvent::FleetPlan { .. } => 0,
        FleetEvent::RolloutStarted { .. } => 1,
        FleetEvent::FleetItem { .. } => 2,
        FleetEvent::HostStarted { .. } => 3,
        FleetEvent::HostEvent { .. } => 4,
        FleetEvent::HostFinished { .. } => 5,
        FleetEvent::HostStepFinished { .. } => 6,
        FleetEvent::RolloutFinished { .. } => 7,
        FleetEvent::FleetRollbackPlan { .. } => 8,
        FleetEvent::FleetUndoStarted { .. } => 9,
        FleetEvent::FleetUndoFinished { .. } => 10,
        FleetEvent::RollbackFinished { .. } => 11,
        FleetEvent::Refused { .. } => 12,
    }
}

#[test]
fn every_event_is_sampled_once() {
    let mut seen: Vec<usize> = every_event().iter().map(which).collect();
    seen.push(which(&Event::Unknown));
    seen.sort_unstable();
    assert_eq!(seen, (0..=14).collect::<Vec<_>>());
    let mut seen: Vec<usize> = every_fleet_event().iter().map(which_fleet).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..=12).collect::<Vec<_>>());
}

#[test]
fn every_event_reads_back_as_it_was_written() {
    for e in every_event() {
        let text = line(e.clone());
        assert!(!text.contains('\n'), "{text}");
        let back: Line<Event> = read(&text).unwrap();
        assert_eq!((back.schema, back.event), (SCHEMA, e), "{text}");
        assert!(!back.at.is_empty());
    }
    for e in every_fleet_event() {
        let back: Line<FleetEvent> = read(&line(e.clone())).unwrap();
        assert_eq!(back.event, e);
    }
}

#[test]
fn lines_of_other_hoists_are_read_leniently_but_a_newer_schema_is_refused() {
    // No schema, no time, fields missing: read, with defaults.
    let old: Line<Event> = read(r#"{"event":"step-started","step":"a"}"#).unwrap();
    assert_eq!(old.schema, 0);
    assert!(matches!(old.event, Event::StepStarted { ref step, n: 0, .. } if step == "a"));
    // An event this hoist does not know, same schema: passed over.
    let new: Line<Event> = read(r#"{"schema":1,"event":"brand-new","x":1}"#).unwrap();
    assert_eq!(new.event, Event::Unknown);
    assert_eq!(
        read::<Event>(r#"{"schema":2,"event":"run-finished","state":"committed"}"#),
        Err(Unread::Newer(2))
    );
    assert!(Unread::Newer(2).to_string().contains("schema 2"));
    assert_eq!(
        read::<Event>("Reading package lists..."),
        Err(Unread::NotAnEvent)
    );
    assert_eq!(read::<Event>(r#"{"no":"event"}"#), Err(Unread::NotAnEvent));
    // A field of the wrong type is not taken for something else.
    assert_eq!(
        read::<Event>(r#"{"event":"action-finished","step":"x","ok":"yes"}"#),
        Err(Unread::NotAnEvent)
    );
}

#[test]
fn a_status_answer_reads_on_the_controller_as_the_host_wrote_it() {
    #[derive(Serialize)]
    struct HostRun {
        id: i64,
        state: &'static str,
        error: Option<&'static str>,
        steps: Vec<u8>,
    }
    let host = Status {
        schema: SCHEMA,
        runs: 2,
        run: Some(HostRun {
            id: 2,
            state: "paused",
            error: Some("why"),
            steps: vec![1],
        }),
        at: Some("a@1".into()),
        running_now: None,
        disk_full: None,
        next: "hoist resume".into(),
        log: Some("/l".into()),
        events: vec![JournalEvent {
            at: "t".into(),
            kind: "fleet-rollout".into(),
            detail: "1-ab".into(),
        }],
    };
    let text = serde_json::to_string_pretty(&host).unwrap();
    let read: Status<RunBrief, JournalEvent> = serde_json::from_str(&text).unwrap();
    assert_eq!(read.run.as_ref().map(|r| r.state.as_str()), Some("paused"));
    assert_eq!(read.run.unwrap().error.as_deref(), Some("why"));
    assert_eq!(read.events, host.events);
    assert_eq!((read.runs, read.next.as_str()), (2, "hoist resume"));
    // A journal with no run.
    let none: Status<RunBrief, JournalEvent> = serde_json::from_str(r#"{"runs":0}"#).unwrap();
    assert!(none.run.is_none() && none.events.is_empty());
}

/// The part of docs/WIRE.md under `### \`name\``, up to the next heading.
fn section<'a>(doc: &'a str, name: &str) -> Option<&'a str> {
    let head = format!("### `{name}`");
    let start = doc.find(&head)? + head.len();
    let rest = &doc[start..];
    Some(&rest[..rest.find("\n#").unwrap_or(rest.len())])
}

#[test]
fn docs_wire_md_names_every_event_and_field() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/WIRE.md"))
        .expect("docs/WIRE.md");
    assert!(doc.contains(&format!("Schema number: {SCHEMA}")));
    let mut missing = Vec::new();
    // Host and fleet events have their own parts (both have an
    // `undo-started`).
    let (host_part, fleet_part) = doc
        .split_once("## Fleet events")
        .expect("a `## Fleet events` part");
    let events = every_event()
        .into_iter()
        .map(|e| (host_part, serde_json::to_value(e).unwrap()));
    let fleet = every_fleet_event()
        .into_iter()
        .map(|e| (fleet_part, serde_json::to_value(e).unwrap()));
    for (part, v) in events.chain(fleet) {
        let name = v["event"].as_str().unwrap().to_string();
        let Some(text) = section(part, &name) else {
            missing.push(name);
            continue;
        };
        for key in v.as_object().unwrap().keys().filter(|k| *k != "event") {
            if !text.contains(&format!("`{key}`")) {
                missing.push(format!("{name}.{key}"));
            }
        }
    }
    let status = serde_json::to_value(Status::<RunBrief, JournalEvent>::no_run()).unwrap();
    let text = section(&doc, "hoist status --json").unwrap_or_default();
    for key in status.as_object().unwrap().keys() {
        if !text.contains(&format!("`{key}`")) {
            missing.push(format!("status.{key}"));
        }
    }
    assert!(missing.is_empty(), "docs/WIRE.md lacks: {missing:?}");
}

#[test]
fn docs_wire_md_names_every_documents_fields() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/WIRE.md"))
        .expect("docs/WIRE.md");
    let s = |x: &str| x.to_string();
    let docs: Vec<(&str, Value)> = vec![
        (
            "hoist lint --json",
            serde_json::to_value(LintReport {
                errors: 0,
                warnings: 0,
                problems: vec![],
            })
            .unwrap(),
        ),
        (
            "hoist plan --json",
            serde_json::to_value(PlanUpToDate {
                up_to_date: true,
                current: s("1"),
                target: s("1"),
            })
            .unwrap(),
        ),
        (
            "hoist history --json",
            serde_json::to_value(HistoryRun {
                run: 1,
                product: s("p"),
                from: s("1"),
                to: s("2"),
                state: s("committed"),
                started_at: s("t"),
                finished_at: None,
                plan_hash: s("h"),
                error: None,
            })
            .unwrap(),
        ),
        (
            "hoist history --json",
            serde_json::to_value(History { runs: vec![] }).unwrap(),
        ),
        (
            "hoist backups --json",
            serde_json::to_value(Backups { backups: vec![] }).unwrap(),
        ),
        (
            "hoist firewall leftovers --json",
            serde_json::to_value(Leftovers {
                rules: vec![],
                live: None,
                unfinished_run: None,
                errors: vec![],
                message: None,
            })
            .unwrap(),
        ),
    ];
    let mut missing = Vec::new();
    for (name, v) in docs {
        let text = section(&doc, name).unwrap_or_default();
        for key in v.as_object().unwrap().keys() {
            if !text.contains(&format!("`{key}`")) {
                missing.push(format!("{name}: {key}"));
            }
        }
    }
    assert!(missing.is_empty(), "docs/WIRE.md lacks: {missing:?}");
    // A document carries the schema number beside its fields.
    let v = serde_json::to_value(Doc {
        schema: SCHEMA,
        body: Backups { backups: vec![] },
    })
    .unwrap();
    assert_eq!(v, serde_json::json!({ "schema": SCHEMA, "backups": [] }));
}
