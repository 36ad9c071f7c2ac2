package syncer

import (
	"fmt"
	"strings"
)

// BriefNames is how many names a summary line shows before it only counts.
const BriefNames = 5

// Brief returns names as a summary shows them: all of them when there are
// at most BriefNames, else the first BriefNames and how many more ("a, b,
// c, d, e, … and 19,995 more"), so that a line stays short whatever the
// repository's size.
func Brief(names []string) string {
	if len(names) <= BriefNames {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:BriefNames], ", ") + ", … and " + Count(len(names)-BriefNames) + " more"
}

// Count formats n with thousands separators: 20000 is "20,000".
func Count(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + Count(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
