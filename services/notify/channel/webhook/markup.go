package webhook

import "github.com/vigil-ops/vigil/services/notify/internal/message"

// Plain is plain text, the markup the webhook's text is drawn in: the
// receiver formats it as it sees fit.
var Plain = message.Plain
