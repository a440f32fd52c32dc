//! Task documents: listing filters, requirements, deletion (clearml-server `database/model/base.py`,
//! `services/tasks.py`, `bll/task/task_operations.py`).

use super::*;

fn names(v: Value) -> Vec<String> {
    let mut n: Vec<String> = v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    n.sort();
    n
}

// database/model/base.py get_list_field_query on Task.get_all_query_options list fields.
#[test]
fn base_py_list_filters_on_task_fields() {
    let mut s = store();
    let p = s.projects_create(req(json!({"name": "proj"})), T0).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = task(&mut s, "aaa");
    let b = task(&mut s, "bbb");
    let c = task(&mut s, "ccc");
    s.tasks.get_mut(&a).unwrap().project = Some(p.clone());
    s.tasks.get_mut(&a).unwrap().tags = vec!["x".into(), "y".into()];
    s.tasks.get_mut(&b).unwrap().tags = vec!["x".into()];
    s.tasks.get_mut(&c).unwrap().status = TaskStatus::Failed;
    let get = |s: &Store, q: Value| names(s.tasks_get_all(req(q)).unwrap());
    assert_eq!(get(&s, json!({"status": ["-failed"]})), ["aaa", "bbb"]);
    assert_eq!(get(&s, json!({"project": [null]})), ["bbb", "ccc"]);
    assert_eq!(
        get(&s, json!({"project": [p, null]})),
        ["aaa", "bbb", "ccc"]
    );
    assert_eq!(get(&s, json!({"tags": ["__$not", "y"]})), ["bbb", "ccc"]);
    assert_eq!(get(&s, json!({"tags": ["__$all", "x", "y"]})), ["aaa"]);
    assert_eq!(get(&s, json!({"tags": [null]})), ["ccc"]);
    let err = s
        .tasks_get_all(req(json!({"tags": ["__$xor", "y"]})))
        .unwrap_err();
    assert_eq!(code(err), (400, 16));
}

// services/tasks.py set_requirements: stored in script.requirements; 400/122 without a script.
#[test]
fn services_tasks_set_requirements_is_stored_and_needs_a_script() {
    let mut s = store();
    let t = task(&mut s, "task");
    let err = s
        .tasks_set_requirements(req(json!({"task": t, "requirements": {"pip": "x"}})), T0)
        .unwrap_err();
    assert_eq!(code(err), (400, 122));
    s.tasks.get_mut(&t).unwrap().script = Some(json!({"entry_point": "a.py"}));
    let v = s
        .tasks_set_requirements(
            req(json!({"task": t, "requirements": {"pip": "numpy"}})),
            T0,
        )
        .unwrap();
    assert_eq!(v["fields"]["script.requirements"], json!({"pip": "numpy"}));
    assert_eq!(
        s.tasks[&t].script,
        Some(json!({"entry_point": "a.py", "requirements": {"pip": "numpy"}}))
    );
}

// task_operations.py delete_task: anything but a draft needs force (400/123).
#[test]
fn task_operations_delete_task_needs_force_unless_draft() {
    let mut s = store();
    let t = running(&mut s, "task", T0);
    s.tasks_completed(req(json!({"task": t})), T0).unwrap();
    let err = s.tasks_delete(req(json!({"task": t}))).unwrap_err();
    assert_eq!(code(err), (400, 123));
    let v = s
        .tasks_delete(req(json!({"task": t, "force": true})))
        .unwrap();
    assert_eq!(v["deleted"], json!(true));
    let draft = task(&mut s, "draft");
    s.tasks_delete(req(json!({"task": draft}))).unwrap();
    assert!(s.tasks.is_empty());
}
