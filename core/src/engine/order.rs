//! Dependency order: parents before children, accounts before the files they own, each type in its
//! natural place.

use std::collections::HashMap;

use crate::resources::Resource;

/// Indices of `resources` so that each comes after the declared resources it depends on; otherwise
/// declaration order is kept. A cycle falls back to declaration order for the rest.
pub fn dependency_order(resources: &[&Resource]) -> Vec<usize> {
    let index: HashMap<String, usize> =
        resources.iter().enumerate().map(|(i, r)| (r.kind().id(), i)).collect();
    let deps: Vec<Vec<usize>> = resources
        .iter()
        .map(|r| r.kind().depends_on().iter().filter_map(|id| index.get(id).copied()).collect())
        .collect();
    let mut done = vec![false; resources.len()];
    let mut order = Vec::with_capacity(resources.len());
    // Depth-first with an explicit "visiting" mark to stop on cycles.
    fn visit(
        i: usize,
        deps: &[Vec<usize>],
        done: &mut [bool],
        visiting: &mut [bool],
        order: &mut Vec<usize>,
    ) {
        if done[i] || visiting[i] {
            return;
        }
        visiting[i] = true;
        for &d in &deps[i] {
            visit(d, deps, done, visiting, order);
        }
        visiting[i] = false;
        done[i] = true;
        order.push(i);
    }
    let mut visiting = vec![false; resources.len()];
    // Types in their natural order (groups, users, packages, paths, env files, services, checks);
    // declaration order within a type.
    let mut by_rank: Vec<usize> = (0..resources.len()).collect();
    by_rank.sort_by_key(|&i| resources[i].kind().rank());
    for i in by_rank {
        visit(i, &deps, &mut done, &mut visiting, &mut order);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    #[test]
    fn parents_come_first() {
        let config = Config::from_value(
            json!({"resources": [
                {"type": "file", "path": "/a/b/c.txt", "content": "x"},
                {"type": "dir", "path": "/a/b"},
                {"type": "link", "path": "/a/l", "target": "b"},
                {"type": "dir", "path": "/a"},
            ]}),
            std::path::Path::new("/"),
        )
        .expect("valid");
        let refs: Vec<&Resource> = config.resources.iter().collect();
        let ids: Vec<String> = dependency_order(&refs).into_iter().map(|i| refs[i].kind().id()).collect();
        assert_eq!(ids, ["dir:/a", "dir:/a/b", "file:/a/b/c.txt", "link:/a/l"]);
    }
}
