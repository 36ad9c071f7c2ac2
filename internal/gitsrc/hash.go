package gitsrc

// Hash returns the git object id of the entry at name (slash-separated,
// relative to the root; "." for the root tree), following symlinks as Stat
// does: a tree id for a directory, a blob id for a file. Two trees give the
// same id for a path exactly when the path holds the same entries with the
// same contents (symlinks compared as links, not as what they point to).
func (t *Tree) Hash(name string) (string, error) {
	n, err := t.fsys.lookup(name, true)
	if err != nil {
		return "", t.fsys.pathErr("hash", name, err)
	}
	return n.hash.String(), nil
}
