package repair

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"

	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/subject"
	"github.com/vigil-ops/vigil/pkg/workload"
	"github.com/vigil-ops/vigil/services/repair/internal/postgres"
)

// subjectGrace is how long an analysis waits for its incident's
// incident.opened to reach this service (the two travel on different
// streams); past it, a repair with no known subject is blocked.
const subjectGrace = 2 * time.Minute

// errSubjectPending: the incident's subject has not arrived yet; the
// analysis is redelivered.
var errSubjectPending = errors.New("the incident's subject has not reached the repair service yet")

// incidentOpened records what an incident is about: its subject as the
// monitor resolved it, the only thing its repairs may touch, and its
// priority.
func (s *Service) incidentOpened(ctx context.Context, tx pgx.Tx, e *eventsv1.IncidentOpened) error {
	inc := e.GetIncident()
	if inc.GetId() == "" {
		return nil
	}
	subj := inc.GetSubject()
	if subj == nil {
		// Announced by a monitor older than subjects: confined to the
		// namespace its labels name, owned by nobody.
		subj = subject.NewIndex(nil, nil).Resolve(inc.GetGroupLabels())
	}
	return s.store.AddSubject(ctx, tx, inc, subj, s.now())
}

// incidentUpdated follows an incident's priority, which its approval
// cards show.
func (s *Service) incidentUpdated(ctx context.Context, tx pgx.Tx, e *eventsv1.IncidentUpdated) error {
	if e.GetIncident().GetId() == "" {
		return nil
	}
	return s.store.SetPriority(ctx, tx, e.GetIncident())
}

// subjectOf is the subject of r's incident as this service recorded it,
// with r's app and team taken from it (never from the analysis); nil when
// it is not known, after the grace period since occurred.
func (s *Service) subjectOf(ctx context.Context, tx pgx.Tx, incidentID string, occurred time.Time) (*typesv1.Subject, error) {
	subj, err := s.store.Subject(ctx, tx, incidentID)
	switch {
	case errors.Is(err, postgres.ErrNotFound) && s.now().Sub(occurred) < subjectGrace:
		return nil, fmt.Errorf("incident %s: %w", incidentID, errSubjectPending)
	case errors.Is(err, postgres.ErrNotFound):
		return nil, nil
	}
	return subj, err
}

// offSubject says why r may not act on its target: "" when it may. It
// checks the target against the incident's subject, as this service
// recorded it (subjectVerdict); with kc, it also asks the cluster whether
// the target controls the subject's pod (ownsPod).
func (s *Service) offSubject(ctx context.Context, kc kubernetes.Interface, r *repairv1.Repair) (string, error) {
	v, err := s.subjectVerdict(ctx, r)
	if err != nil || !v.OK {
		return v.Reason, err
	}
	return s.ownsPod(ctx, kc, r, v)
}

// subjectVerdict is subject.Check of r's target against the incident's
// subject, without asking the cluster; Reason says why not, for people.
func (s *Service) subjectVerdict(ctx context.Context, r *repairv1.Repair) (subject.Verdict, error) {
	subj := r.GetSubject()
	if subj == nil {
		return subject.Verdict{Reason: "the incident's subject never reached the repair service: a person must act"}, nil
	}
	var cluster string
	if s.deps.Clusters != nil && (subj.GetCluster() == "" || r.GetProposal().GetTarget().GetCluster() == "") {
		c, err := s.deps.Clusters.DefaultCluster(ctx)
		if err != nil {
			return subject.Verdict{}, err
		}
		cluster = c
	}
	v := subject.Check(subj, r.GetProposal().GetTarget(), r.GetProposal().GetAction(), cluster)
	if !v.OK {
		v.Reason = "not the incident's subject: " + v.Reason
	}
	return v, nil
}

// ownsPod says why r's target may not act for the subject's pod of v
// ("" when it may, or when v names no pod or kc is nil): the cluster
// tells whether the target controls it.
func (s *Service) ownsPod(ctx context.Context, kc kubernetes.Interface, r *repairv1.Repair, v subject.Verdict) (string, error) {
	if v.PodOwner == "" || kc == nil {
		return "", nil
	}
	t := r.GetProposal().GetTarget()
	ok, err := controls(ctx, kc, r.GetSubject().GetNamespace(), v.PodOwner, t)
	if err != nil || ok {
		return "", err
	}
	return fmt.Sprintf("not the incident's subject: %s %s/%s does not control pod %s", t.GetKind(), t.GetNamespace(), t.GetName(), v.PodOwner), nil
}

// controls says whether target controls pod (through a ReplicaSet for a
// Deployment), asking the cluster (workload.Controller); a pod or
// ReplicaSet that is gone (a crash-looping pod is replaced) is judged by
// its name, which its controller made.
func controls(ctx context.Context, kc kubernetes.Interface, ns, pod string, target *typesv1.ResourceRef) (bool, error) {
	if target.GetKind() == "Pod" {
		return target.GetName() == pod, nil
	}
	ref, err := workload.Controller(ctx, kc, ns, "Pod", pod)
	if apierrors.IsNotFound(err) {
		return strings.HasPrefix(ref.Name, target.GetName()+"-"), nil
	}
	if err != nil {
		return false, err
	}
	return ref.Kind == target.GetKind() && ref.Name == target.GetName(), nil
}
