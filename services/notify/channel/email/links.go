package email

import (
	"time"

	"github.com/vigil-ops/vigil/pkg/actionlink"
	"github.com/vigil-ops/vigil/pkg/approval"
)

// maxLinkAge bounds an action link's life: an email lies in a mailbox
// long after it was read, and a link is a bearer credential.
const maxLinkAge = 24 * time.Hour

// links mint the action links of one recipient's copy (pkg/actionlink),
// which the gateway answers at base+token.
type links struct {
	key  []byte
	base string
}

// of are recipient r's links for d: one per button of an incident's
// message, and Approve, Reject and Later on an approval card still
// waiting, each valid until the approval expires; none on anything else.
func (ls *links) of(d drawn, r string) ([]link, error) {
	if d.isCard {
		c := d.card
		if c.Outcome != "" {
			return nil, nil
		}
		ttl := maxLinkAge
		if !c.Expires.IsZero() {
			ttl = min(ttl, time.Until(c.Expires))
		}
		if ttl <= 0 {
			return nil, nil
		}
		w := c.Words
		return ls.mint(r, ttl, c.RepairID, []verbLabel{{approval.Approve, w.Approve}, {approval.Reject, w.Reject}, {approval.Later, w.Later}})
	}
	var out []link
	for _, b := range d.buttons {
		l, err := ls.mint(r, maxLinkAge, b.ID, []verbLabel{{b.Verb, b.Label}})
		if err != nil {
			return nil, err
		}
		out = append(out, l...)
	}
	return out, nil
}

type verbLabel struct {
	verb  approval.Verb
	label string
}

func (ls *links) mint(r string, ttl time.Duration, target string, vs []verbLabel) ([]link, error) {
	out := make([]link, 0, len(vs))
	for _, v := range vs {
		token, err := actionlink.Mint(ls.key, v.verb, target, r, ttl)
		if err != nil {
			return nil, err
		}
		out = append(out, link{Label: v.label, URL: ls.base + token})
	}
	return out, nil
}
