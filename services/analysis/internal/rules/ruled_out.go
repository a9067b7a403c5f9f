package rules

import "github.com/vigil-ops/vigil/services/analysis/internal/evidence"

// hypotheses are the causes the rules consider; each says, when the
// evidence rejects it, why (rejected true). A hypothesis the evidence
// supports, or cannot judge, is not ruled out.
var hypotheses = []func(f *facts) (string, bool){
	func(f *facts) (string, bool) {
		return f.tr("not OOM: no container was OOMKilled"), len(f.b.Pods) > 0 && len(f.containers(oomKilled)) == 0
	},
	func(f *facts) (string, bool) {
		_, _, recent := f.recentChange()
		return f.tr("not a bad release: no deploy or new revision in the %s before the incident", changeWindow),
			f.w != nil && !recent
	},
	func(f *facts) (string, bool) {
		return f.tr("not an image problem: no ImagePullBackOff or ErrImagePull"),
			len(f.b.Pods) > 0 && len(f.containers(waiting(imagePullReasons...))) == 0
	},
	func(f *facts) (string, bool) {
		return f.tr("not a missing Secret or ConfigMap: no CreateContainerConfigError, no mount failing on one"),
			len(f.b.Pods) > 0 && len(f.containers(waiting("CreateContainerConfigError"))) == 0 &&
				len(f.events(func(e evidence.Event) bool { return missingConfigRE.MatchString(e.Message) })) == 0
	},
	func(f *facts) (string, bool) {
		return f.tr("not unschedulable: no pod is pending unscheduled"), len(f.b.Pods) > 0 && len(f.pending()) == 0
	},
	func(f *facts) (string, bool) {
		return f.tr("not a quota: no pod creation refused for an exceeded quota"),
			f.w != nil && len(f.events(eventsWith("FailedCreate", quotaRE))) == 0
	},
	func(f *facts) (string, bool) {
		return f.tr("not a crash loop: no container crashing or in CrashLoopBackOff"),
			len(f.b.Pods) > 0 && len(f.containers(f.crashing)) == 0
	},
	func(f *facts) (string, bool) {
		for _, p := range f.b.Pods {
			if !p.DeletingSince.IsZero() && f.now.Sub(p.DeletingSince) > stuckAfter {
				return "", false
			}
		}
		return f.tr("not a stuck pod: no pod terminating for more than %s", stuckAfter), len(f.b.Pods) > 0
	},
	func(f *facts) (string, bool) {
		if f.w == nil || !f.scalable() {
			return "", false
		}
		return f.tr("not scaled to zero: %d replicas desired", f.w.Replicas), f.w.Replicas > 0
	},
	func(f *facts) (string, bool) {
		s, ok := f.series(signalCPU)
		if !ok {
			return "", false // no metrics: saturation cannot be judged
		}
		lowest, sat := f.sustained(s, saturated)
		if lowest < 0 {
			return "", false // too few samples to judge
		}
		return f.tr("not saturation: cpu not sustained at %.0f %% (lowest %.0f %%)", saturated*100, lowest*100), !sat
	},
}
