package admin

import "time"

// AuditRecord is one line of the control-plane audit log. It never holds a request body, so no
// secret can reach it.
type AuditRecord struct {
	Time      time.Time `json:"time"`
	RequestID string    `json:"requestId"`
	Caller    string    `json:"caller"`
	Remote    string    `json:"remote"`
	Method    string    `json:"method"`
	Path      string    `json:"path"`
	Status    int       `json:"status"`
	Outcome   string    `json:"outcome"`
	// Reason says why a request failed authentication or authorization; empty otherwise.
	Reason string `json:"reason,omitempty"`
}
