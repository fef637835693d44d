//! THREAD / UID THREAD (RFC 5256 §3): the ORDEREDSUBJECT and REFERENCES algorithms, and REFS
//! (draft-ietf-morg-inthread): REFERENCES without the subject merging of its step 5, threads
//! ordered by their newest message. `sort.rs` gathers the messages and their keys; this file
//! builds the threads and renders `* THREAD ...`.
//!
//! The tree is an arena of [`Node`]s (a node per message and per message-ID only referred to:
//! a "dummy"), linked by indexes. Nothing recurses: every walk keeps its own stack, so a chain
//! of 100,000 replies costs memory, not the thread's stack.
//!
//! ```text
//! thread-data    = "THREAD" [SP 1*thread-list]
//! thread-list    = "(" (thread-members / thread-nested) ")"
//! thread-members = nz-number *(SP nz-number) [SP thread-nested]
//! thread-nested  = 2*thread-list
//! ```

use std::collections::HashMap;

use super::sort::Item;
use crate::imap::encode;
use crate::imap::types::ThreadAlgorithm;

const NONE: usize = usize::MAX;

/// A container: a message, or a dummy standing for a message-ID that was only referred to.
#[derive(Clone, Debug)]
struct Node {
    /// Index into the items; [`NONE`] for a dummy.
    item: usize,
    parent: usize,
    children: Vec<usize>,
}

/// Threads the gathered messages and renders `* THREAD ...\r\n`.
pub(crate) fn render(items: &mut [Item], algorithm: ThreadAlgorithm, uid: bool) -> Vec<u8> {
    let (nodes, roots) = match algorithm {
        ThreadAlgorithm::OrderedSubject => ordered_subject(items),
        ThreadAlgorithm::References => references(items, true),
        ThreadAlgorithm::Refs => references(items, false),
    };
    let mut text = b"* THREAD".to_vec();
    if !roots.is_empty() {
        text.push(b' ');
    }
    for &root in &roots {
        write_thread(&mut text, &nodes, items, root, uid);
    }
    text.extend_from_slice(b"\r\n");
    text
}

/// (sent date, sequence number): RFC 5256's order of messages, ties by sequence number.
fn date_key(item: &Item) -> (i64, u32) {
    (item.sent, item.msn)
}

fn subject(item: &Item) -> &str {
    item.keys.as_deref().map_or("", |k| k.base_subject.as_str())
}

fn is_reply(item: &Item) -> bool {
    item.keys.as_deref().is_some_and(|k| k.subject_reply)
}

/// ORDEREDSUBJECT: messages grouped by base subject; in each group the oldest is the root
/// and every other message its child (in date order); groups ordered by their root's date.
fn ordered_subject(items: &[Item]) -> (Vec<Node>, Vec<usize>) {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_unstable_by(|&a, &b| {
        subject(&items[a])
            .cmp(subject(&items[b]))
            .then_with(|| date_key(&items[a]).cmp(&date_key(&items[b])))
    });
    let mut nodes: Vec<Node> =
        (0..items.len()).map(|item| Node { item, parent: NONE, children: Vec::new() }).collect();
    let mut roots = Vec::new();
    let mut group_root = NONE;
    for &index in &order {
        if group_root != NONE && subject(&items[group_root]) == subject(&items[index]) {
            nodes[group_root].children.push(index);
            nodes[index].parent = group_root;
        } else {
            group_root = index;
            roots.push(index);
        }
    }
    roots.sort_unstable_by_key(|&root| date_key(&items[root]));
    (nodes, roots)
}

/// The tree being built by REFERENCES / REFS.
struct Arena<'a> {
    items: &'a [Item],
    nodes: Vec<Node>,
    by_id: HashMap<&'a str, usize>,
}

impl<'a> Arena<'a> {
    /// The container for `id`, a new dummy if there is none.
    fn container(&mut self, id: &'a str) -> usize {
        if let Some(&node) = self.by_id.get(id) {
            return node;
        }
        let node = self.push(NONE);
        self.by_id.insert(id, node);
        node
    }

    fn push(&mut self, item: usize) -> usize {
        self.nodes.push(Node { item, parent: NONE, children: Vec::new() });
        self.nodes.len() - 1
    }

    /// True when `ancestor` is `node` or one of its ancestors. A node without children is
    /// nobody's ancestor but its own: the common case (a new message) costs nothing, where the
    /// walk up could cost the depth of the thread.
    fn is_ancestor(&self, ancestor: usize, mut node: usize) -> bool {
        if self.nodes[ancestor].children.is_empty() {
            return ancestor == node;
        }
        while node != NONE {
            if node == ancestor {
                return true;
            }
            node = self.nodes[node].parent;
        }
        false
    }

    fn unlink(&mut self, child: usize) {
        let parent = std::mem::replace(&mut self.nodes[child].parent, NONE);
        if parent != NONE {
            self.nodes[parent].children.retain(|&c| c != child);
        }
    }

    fn link(&mut self, parent: usize, child: usize) {
        debug_assert_eq!(self.nodes[child].parent, NONE);
        self.nodes[child].parent = parent;
        self.nodes[parent].children.push(child);
    }

    /// The message that stands for a node in date order: itself, or a dummy's first child.
    fn date_of(&self, node: usize) -> (i64, u32) {
        let mut node = node;
        while self.nodes[node].item == NONE {
            match self.nodes[node].children.first() {
                Some(&child) => node = child,
                None => return (i64::MAX, u32::MAX),
            }
        }
        date_key(&self.items[self.nodes[node].item])
    }

    /// The item of a node, or of a dummy's first child.
    fn item_of(&self, node: usize) -> Option<&'a Item> {
        let node =
            if self.nodes[node].item == NONE { *self.nodes[node].children.first()? } else { node };
        self.items.get(self.nodes[node].item)
    }
}

/// REFERENCES (`merge_subjects`) or REFS: RFC 5256 §3's steps 1 to 6.
fn references(items: &[Item], merge_subjects: bool) -> (Vec<Node>, Vec<usize>) {
    let mut arena = Arena { items, nodes: Vec::new(), by_id: HashMap::new() };
    for (index, item) in items.iter().enumerate() {
        link_message(&mut arena, index, item);
    }
    // (2) the roots, (3) dummies pruned.
    let roots: Vec<usize> =
        (0..arena.nodes.len()).filter(|&n| arena.nodes[n].parent == NONE).collect();
    let mut roots = prune(&mut arena.nodes, &roots);
    // (4) and (6): siblings in date order everywhere, deepest first.
    sort_siblings(&mut arena, &roots);
    roots.sort_by_key(|&node| arena.date_of(node));
    if merge_subjects {
        roots = merge_by_subject(&mut arena, &roots);
        sort_siblings(&mut arena, &roots);
        roots.sort_by_key(|&node| arena.date_of(node));
    } else {
        // REFS: threads ordered by their newest message.
        let newest: HashMap<usize, (i64, u32)> =
            roots.iter().map(|&root| (root, newest_in(&arena, root))).collect();
        roots.sort_by(|a, b| newest[a].cmp(&newest[b]));
    }
    (arena.nodes, roots)
}

/// Step (1): the message's container, its References chain linked, and its parent set.
fn link_message<'a>(arena: &mut Arena<'a>, index: usize, item: &'a Item) {
    let keys = item.keys.as_deref().expect("THREAD gathers keys");
    // (1A) A message without a Message-ID, or with one already taken, gets a unique one.
    let own = match arena.by_id.get(keys.message_id.as_str()) {
        Some(&node) if !keys.message_id.is_empty() && arena.nodes[node].item == NONE => {
            arena.nodes[node].item = index;
            node
        }
        None if !keys.message_id.is_empty() => {
            let node = arena.push(index);
            arena.by_id.insert(keys.message_id.as_str(), node);
            node
        }
        _ => arena.push(index),
    };
    // References, else the first In-Reply-To identifier.
    let references: Vec<&'a str> = if keys.references.is_empty() {
        [keys.in_reply_to.as_str()].into_iter().filter(|id| !id.is_empty()).collect()
    } else {
        keys.references.iter().map(String::as_str).collect()
    };
    let chain: Vec<usize> = references.iter().map(|id| arena.container(id)).collect();
    for pair in chain.windows(2) {
        let (parent, child) = (pair[0], pair[1]);
        if arena.nodes[child].parent == NONE && !arena.is_ancestor(child, parent) && parent != child
        {
            arena.link(parent, child);
        }
    }
    // (1C) The last reference is the parent, replacing any presumed one.
    arena.unlink(own);
    if let Some(&parent) = chain.last()
        && !arena.is_ancestor(own, parent)
    {
        arena.link(parent, own);
    }
}

/// Step (3): dummies without children go; a dummy's children take its place, except at the
/// top when there is more than one of them. Post-order without recursion.
fn prune(nodes: &mut [Node], roots: &[usize]) -> Vec<usize> {
    let mut post = Vec::with_capacity(nodes.len());
    let mut stack: Vec<usize> = roots.to_vec();
    while let Some(node) = stack.pop() {
        post.push(node);
        stack.extend(nodes[node].children.iter().copied());
    }
    // `post` lists parents before children: walk it backwards for children first.
    for &node in post.iter().rev() {
        let children = std::mem::take(&mut nodes[node].children);
        let mut kept = Vec::with_capacity(children.len());
        for child in children {
            if nodes[child].item == NONE {
                let grandchildren = std::mem::take(&mut nodes[child].children);
                for &g in &grandchildren {
                    nodes[g].parent = node;
                }
                kept.extend(grandchildren);
            } else {
                kept.push(child);
            }
        }
        nodes[node].children = kept;
    }
    let mut top = Vec::with_capacity(roots.len());
    for &root in roots {
        if nodes[root].item != NONE || nodes[root].children.len() > 1 {
            top.push(root);
        } else if let [only] = nodes[root].children[..] {
            nodes[only].parent = NONE;
            nodes[root].children.clear();
            top.push(only);
        }
    }
    top
}

/// Sorts every set of siblings under `roots` by date, children before their parents (so a
/// dummy's date, its first child's, is known when its own siblings are sorted).
fn sort_siblings(arena: &mut Arena<'_>, roots: &[usize]) {
    let mut post = Vec::new();
    let mut stack: Vec<usize> = roots.to_vec();
    while let Some(node) = stack.pop() {
        post.push(node);
        stack.extend(arena.nodes[node].children.iter().copied());
    }
    for &node in post.iter().rev() {
        let mut children = std::mem::take(&mut arena.nodes[node].children);
        children.sort_by_key(|&child| arena.date_of(child));
        arena.nodes[node].children = children;
    }
}

/// The newest message of a thread (REFS orders threads by it).
fn newest_in(arena: &Arena<'_>, root: usize) -> (i64, u32) {
    let mut newest = (i64::MIN, 0);
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        if let Some(item) = arena.items.get(arena.nodes[node].item) {
            newest = newest.max(date_key(item));
        }
        stack.extend(arena.nodes[node].children.iter().copied());
    }
    newest
}

/// Step (5): top-level threads with the same base subject are merged.
fn merge_by_subject<'a>(arena: &mut Arena<'a>, roots: &[usize]) -> Vec<usize> {
    fn subject_of<'a>(arena: &Arena<'a>, node: usize) -> &'a str {
        arena.item_of(node).map_or("", subject)
    }
    let items = arena.items;
    let dummy = |arena: &Arena<'_>, node: usize| arena.nodes[node].item == NONE;
    let reply = |arena: &Arena<'_>, node: usize| {
        arena.nodes[node].item != NONE && is_reply(&items[arena.nodes[node].item])
    };
    // (5B) one container per subject: a dummy over a message, a non-reply over a reply.
    let mut table: HashMap<&'a str, usize> = HashMap::new();
    for &root in roots {
        let subject = subject_of(arena, root);
        if subject.is_empty() {
            continue;
        }
        match table.get(subject) {
            None => {
                table.insert(subject, root);
            }
            Some(&old) => {
                let replace = (dummy(arena, root) && !dummy(arena, old))
                    || (!dummy(arena, old)
                        && reply(arena, old)
                        && !dummy(arena, root)
                        && !reply(arena, root));
                if replace {
                    table.insert(subject, root);
                }
            }
        }
    }
    // (5C) every other top-level container with that subject joins the table's.
    let mut removed = vec![false; arena.nodes.len()];
    let mut replaced: HashMap<usize, usize> = HashMap::new();
    for &root in roots {
        let subject = subject_of(arena, root);
        let Some(&holder) = table.get(subject) else { continue };
        // A root already placed under a new dummy (below) stays there.
        if holder == root || arena.nodes[root].parent != NONE {
            continue;
        }
        let (root_dummy, holder_dummy) = (dummy(arena, root), dummy(arena, holder));
        removed[root] = true;
        if root_dummy && holder_dummy {
            let children = std::mem::take(&mut arena.nodes[root].children);
            for child in children {
                arena.nodes[child].parent = NONE;
                arena.link(holder, child);
            }
        } else if holder_dummy || (!reply(arena, holder) && reply(arena, root)) {
            // Under the dummy, with the other replies; or a reply under its original.
            arena.link(holder, root);
        } else {
            // Both replies or neither: siblings under a new dummy in the holder's place.
            let new = arena.push(NONE);
            removed.push(false);
            arena.link(new, holder);
            arena.link(new, root);
            table.insert(subject, new);
            replaced.insert(holder, new);
        }
    }
    roots
        .iter()
        .filter(|&&root| !removed[root])
        .map(|&root| {
            let mut node = root;
            while let Some(&next) = replaced.get(&node) {
                node = next;
            }
            node
        })
        .collect()
}

/// One `thread-list` for `root`, without recursion.
fn write_thread(text: &mut Vec<u8>, nodes: &[Node], items: &[Item], root: usize, uid: bool) {
    enum Step {
        List(usize),
        Close,
    }
    let mut stack = vec![Step::List(root)];
    while let Some(step) = stack.pop() {
        let mut node = match step {
            Step::Close => {
                text.push(b')');
                continue;
            }
            Step::List(node) => node,
        };
        text.push(b'(');
        stack.push(Step::Close);
        loop {
            let has_message = nodes[node].item != NONE;
            if has_message {
                encode::number(text, u64::from(items[nodes[node].item].number(uid)));
            }
            match nodes[node].children[..] {
                [] => break,
                [only] if has_message => {
                    text.push(b' ');
                    node = only;
                }
                ref children => {
                    if has_message {
                        text.push(b' ');
                    }
                    stack.extend(children.iter().rev().map(|&c| Step::List(c)));
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mime::cache::SortKeys;

    /// A message: sequence number, sent date, Message-ID, References, base subject.
    fn item(msn: u32, sent: i64, id: &str, references: &[&str], subject: &str) -> Item {
        let mut keys = SortKeys {
            base_subject: subject.trim_start_matches("Re: ").to_uppercase(),
            subject_reply: subject.starts_with("Re: "),
            message_id: id.into(),
            references: references.iter().map(|r| (*r).to_owned()).collect(),
            ..SortKeys::default()
        };
        keys.in_reply_to = String::new();
        Item {
            msn,
            uid: msn + 100,
            size: 0,
            arrival: 0,
            sent,
            modseq: 1,
            keys: Some(Box::new(keys)),
            text: 0,
        }
    }

    fn thread(items: &mut [Item], algorithm: ThreadAlgorithm) -> String {
        String::from_utf8(render(items, algorithm, false)).expect("ASCII")
    }

    #[test]
    fn references_builds_chains_branches_and_dummies() {
        let mut items = vec![
            item(1, 10, "a", &[], "one"),
            item(2, 20, "b", &["a"], "Re: one"),
            item(3, 30, "c", &["a", "b"], "Re: one"),
            item(4, 40, "d", &["a"], "Re: one"),
            item(5, 50, "e", &["lost"], "two"),
            item(6, 60, "f", &["lost"], "Re: two"),
            item(7, 5, "g", &[], "three"),
        ];
        assert_eq!(
            thread(&mut items, ThreadAlgorithm::References),
            "* THREAD (7)(1 (2 3)(4))((5)(6))\r\n"
        );
    }

    #[test]
    fn references_merges_subjects_and_refs_does_not() {
        let mut items = vec![
            item(1, 10, "a", &[], "topic"),
            item(2, 20, "b", &[], "Re: topic"),
            item(3, 30, "c", &[], "other"),
            item(4, 40, "d", &["c"], "Re: other"),
            item(5, 15, "e", &[], "late"),
            item(6, 50, "f", &["e"], "Re: late"),
        ];
        assert_eq!(thread(&mut items, ThreadAlgorithm::References), "* THREAD (1 2)(5 6)(3 4)\r\n");
        assert_eq!(thread(&mut items, ThreadAlgorithm::Refs), "* THREAD (1)(2)(3 4)(5 6)\r\n");
    }

    #[test]
    fn subject_merging_of_two_non_replies_makes_a_dummy() {
        let mut items = vec![
            item(1, 10, "a", &[], "same"),
            item(2, 20, "b", &[], "same"),
            item(3, 15, "c", &[], "Re: same"),
        ];
        assert_eq!(thread(&mut items, ThreadAlgorithm::References), "* THREAD ((1 3)(2))\r\n");
    }

    #[test]
    fn ordered_subject_groups_by_subject() {
        let mut items = vec![
            item(1, 30, "a", &[], "b"),
            item(2, 10, "b", &[], "a"),
            item(3, 20, "c", &[], "Re: a"),
            item(4, 40, "d", &[], "a"),
            item(5, 35, "e", &[], "b"),
            item(6, 50, "f", &[], "c"),
        ];
        assert_eq!(
            thread(&mut items, ThreadAlgorithm::OrderedSubject),
            "* THREAD (2 (3)(4))(1 5)(6)\r\n"
        );
    }

    #[test]
    fn loops_and_duplicate_ids_do_not_break_the_tree() {
        let mut items = vec![
            item(1, 10, "a", &["b"], "x"),
            item(2, 20, "b", &["a"], "y"),
            item(3, 30, "a", &[], "z"),
            item(4, 40, "", &[], "w"),
        ];
        let text = thread(&mut items, ThreadAlgorithm::References);
        for msn in 1..=4 {
            assert_eq!(text.matches(&msn.to_string()).count(), 1, "{text}");
        }
        assert_eq!(text, "* THREAD (2 1)(3)(4)\r\n");
    }

    #[test]
    fn a_long_chain_renders_without_recursion() {
        let ids: Vec<String> = (0..5_000).map(|i| format!("m{i}")).collect();
        let mut items: Vec<Item> = (0..5_000)
            .map(|i| {
                let parent: Vec<&str> = if i == 0 { vec![] } else { vec![ids[i - 1].as_str()] };
                item(
                    u32::try_from(i + 1).unwrap(),
                    i64::try_from(i).unwrap(),
                    &ids[i],
                    &parent,
                    "s",
                )
            })
            .collect();
        let text = thread(&mut items, ThreadAlgorithm::Refs);
        assert!(text.starts_with("* THREAD (1 2 3 "));
        assert!(text.ends_with(" 5000)\r\n"));
    }

    #[test]
    fn no_messages_no_threads() {
        assert_eq!(thread(&mut [], ThreadAlgorithm::References), "* THREAD\r\n");
        assert_eq!(thread(&mut [], ThreadAlgorithm::OrderedSubject), "* THREAD\r\n");
    }
}
