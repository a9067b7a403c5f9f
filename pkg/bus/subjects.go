package bus

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
)

// Event is a protobuf event from vigil.events.v1: every one carries an
// EventMeta.
type Event interface {
	proto.Message
	GetMeta() *eventsv1.EventMeta
}

// Subjects of the events, <noun>.<verb in past tense>.
const (
	SubjectAlertFired              = "alert.fired"
	SubjectAlertResolved           = "alert.resolved"
	SubjectIncidentOpened          = "incident.opened"
	SubjectIncidentUpdated         = "incident.updated"
	SubjectIncidentResolved        = "incident.resolved"
	SubjectIncidentEscalated       = "incident.escalated"
	SubjectAnalysisCompleted       = "analysis.completed"
	SubjectRepairRequested         = "repair.requested"
	SubjectRepairApprovalRequested = "repair.approval_requested"
	SubjectRepairApproved          = "repair.approved"
	SubjectRepairRejected          = "repair.rejected"
	SubjectRepairSucceeded         = "repair.succeeded"
	SubjectRepairFailed            = "repair.failed"
	SubjectRepairDecided           = "repair.decided"
	SubjectRepairBlocked           = "repair.blocked"
	SubjectAppRegistered           = "app.registered"
	SubjectAppUpdated              = "app.updated"
	SubjectAppDeleted              = "app.deleted"
	SubjectNamespaceMapped         = "namespace.mapped"
	SubjectNamespaceUnmapped       = "namespace.unmapped"
	SubjectDeployRequested         = "deploy.requested"
	SubjectDeploySucceeded         = "deploy.succeeded"
	SubjectDeployFailed            = "deploy.failed"
	SubjectDeployRolledBack        = "deploy.rolled_back"
	SubjectDeployProgress          = "deploy.progress"
)

// DLQPrefix is prepended to a subject to dead-letter a message from it.
const DLQPrefix = "dlq."

// subjectOf maps each event type to its subject; typeOf is the reverse.
var (
	subjectOf = map[protoreflect.FullName]string{}
	typeOf    = map[string]protoreflect.MessageType{}
)

func init() {
	for subject, m := range map[string]Event{
		SubjectAlertFired:              &eventsv1.AlertFired{},
		SubjectAlertResolved:           &eventsv1.AlertResolved{},
		SubjectIncidentOpened:          &eventsv1.IncidentOpened{},
		SubjectIncidentUpdated:         &eventsv1.IncidentUpdated{},
		SubjectIncidentResolved:        &eventsv1.IncidentResolved{},
		SubjectIncidentEscalated:       &eventsv1.IncidentEscalated{},
		SubjectAnalysisCompleted:       &eventsv1.AnalysisCompleted{},
		SubjectRepairRequested:         &eventsv1.RepairRequested{},
		SubjectRepairApprovalRequested: &eventsv1.RepairApprovalRequested{},
		SubjectRepairApproved:          &eventsv1.RepairApproved{},
		SubjectRepairRejected:          &eventsv1.RepairRejected{},
		SubjectRepairSucceeded:         &eventsv1.RepairSucceeded{},
		SubjectRepairFailed:            &eventsv1.RepairFailed{},
		SubjectRepairDecided:           &eventsv1.RepairDecided{},
		SubjectRepairBlocked:           &eventsv1.RepairBlocked{},
		SubjectAppRegistered:           &eventsv1.AppRegistered{},
		SubjectAppUpdated:              &eventsv1.AppUpdated{},
		SubjectAppDeleted:              &eventsv1.AppDeleted{},
		SubjectNamespaceMapped:         &eventsv1.NamespaceMapped{},
		SubjectNamespaceUnmapped:       &eventsv1.NamespaceUnmapped{},
		SubjectDeployRequested:         &eventsv1.DeployRequested{},
		SubjectDeploySucceeded:         &eventsv1.DeploySucceeded{},
		SubjectDeployFailed:            &eventsv1.DeployFailed{},
		SubjectDeployRolledBack:        &eventsv1.DeployRolledBack{},
		SubjectDeployProgress:          &eventsv1.DeployProgress{},
	} {
		mt := m.ProtoReflect().Type()
		subjectOf[mt.Descriptor().FullName()] = subject
		typeOf[subject] = mt
	}
}

// EventSubjects are the subjects of every event type, sorted.
func EventSubjects() []string {
	out := make([]string, 0, len(typeOf))
	for s := range typeOf {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// SubjectOf returns the subject an event is published on.
func SubjectOf(e Event) (string, error) {
	s, ok := subjectOf[e.ProtoReflect().Descriptor().FullName()]
	if !ok {
		return "", fmt.Errorf("bus: no subject for event type %s", e.ProtoReflect().Descriptor().FullName())
	}
	return s, nil
}

// decode turns a message body into the event its subject carries.
func decode(subject string, data []byte) (Event, error) {
	mt, ok := typeOf[subject]
	if !ok {
		return nil, fmt.Errorf("no event type for subject %q", subject)
	}
	m := mt.New().Interface()
	if err := proto.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("decode %s: %w", mt.Descriptor().FullName(), err)
	}
	e, ok := m.(Event)
	if !ok {
		return nil, fmt.Errorf("%s carries no EventMeta", mt.Descriptor().FullName())
	}
	if e.GetMeta().GetId() == "" {
		return nil, fmt.Errorf("decode %s: meta.id is empty", mt.Descriptor().FullName())
	}
	return e, nil
}
