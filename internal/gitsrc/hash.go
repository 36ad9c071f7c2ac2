package gitsrc

// Hash returns the git object id (full hex) of name in the tree: the tree
// id of a directory, the blob id of a file, following symlinks as Stat
// does. Two names with one id have the same content, whatever the commit,
// so a caller can key work on a directory by it. It reads only tree
// objects (and the blobs of symlinks on the way) and fails as Stat fails.
func (f *treeFS) Hash(name string) (string, error) {
	n, err := f.lookup(name, true)
	if err != nil {
		return "", f.pathErr("hash", name, err)
	}
	return n.hash.String(), nil
}
