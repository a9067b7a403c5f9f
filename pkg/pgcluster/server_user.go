package pgcluster

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// osUser is the account initdb and postgres run as when we are root.
type osUser struct {
	name   string
	uid    uint32
	gid    uint32
	groups []uint32
}

// serverUser returns who runs the server: nil (ourselves) unless we are
// root, which PostgreSQL refuses to run as. Then it is the owner of an
// existing cluster, else postgres, else nobody.
func serverUser(dataDir string, initialized bool) (*osUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	if initialized {
		if fi, err := os.Stat(dataDir); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
				if u, err := user.LookupId(strconv.FormatUint(uint64(st.Uid), 10)); err == nil {
					return newOSUser(u)
				}
				return &osUser{name: strconv.FormatUint(uint64(st.Uid), 10), uid: st.Uid, gid: st.Gid}, nil
			}
		}
	}
	for _, name := range []string{"postgres", "nobody"} {
		if u, err := user.Lookup(name); err == nil {
			return newOSUser(u)
		}
	}
	return nil, errors.New("pgcluster: running as root, and PostgreSQL refuses to; " +
		"neither user postgres nor nobody exists to run it as: create a postgres user")
}

func newOSUser(u *user.User) (*osUser, error) {
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: user %s: uid %q: %w", u.Username, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: user %s: gid %q: %w", u.Username, u.Gid, err)
	}
	ou := &osUser{name: u.Username, uid: uint32(uid), gid: uint32(gid)}
	ids, _ := u.GroupIds() // without them the primary group still applies
	for _, id := range ids {
		if g, err := strconv.ParseUint(id, 10, 32); err == nil && g != gid {
			ou.groups = append(ou.groups, uint32(g))
		}
	}
	return ou, nil
}

// credential is nil for a nil user: the child runs as we do.
func (u *osUser) credential() *syscall.Credential {
	if u == nil {
		return nil
	}
	return &syscall.Credential{Uid: u.uid, Gid: u.gid, Groups: u.groups}
}

// checkTraversable reports an error naming the first of dir and its parents
// that u cannot search: postgres would fail later with a vaguer message.
// It reads mode bits only (no ACLs).
func (u *osUser) checkTraversable(dir string) error {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("pgcluster: %w", err)
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			var bit os.FileMode = 0o001
			switch {
			case st.Uid == u.uid:
				bit = 0o100
			case st.Gid == u.gid || slices.Contains(u.groups, st.Gid):
				bit = 0o010
			}
			if fi.Mode().Perm()&bit == 0 {
				return fmt.Errorf("pgcluster: postgres runs as user %s, who cannot enter %s (mode %v): "+
					"put the data dir elsewhere or make that directory searchable (chmod o+x)", u.name, d, fi.Mode().Perm())
			}
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}
