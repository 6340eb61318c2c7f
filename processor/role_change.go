package processor

import (
	"fmt"
	"sort"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/store"
)

// RoleChanged applies a change to the project's custom role name (a PATCH or DELETE of
// customDBRoles/roles/{name} through the Admin API, called once the change is committed) to
// the running processors at once, as the data plane applies a changed role to open sessions
// (README, "Changes apply at once"): every STARTED processor whose pipeline or dead-letter queue
// uses a Cluster connection whose CUSTOM execute-as role is name, or inherits it through other
// custom roles, is checked again exactly as at start (validate: static $merge and time series
// targets, lookup sources, change stream sources, the dead-letter collection; authz.ExecuteAsAllows).
// A processor the role no longer allows is stopped at once, without a final checkpoint (a write
// under way is let finish; what it had read but not written is not written: a later start
// resumes from its last checkpoint), and recorded FAILED with the start check's error (code
// 420, naming the role, the namespace and the missing action). The others keep running; every running sink forgets the decisions it
// kept for dynamic $merge targets (connectors.Env.RolesGeneration), so each such target is
// checked against the changed role before its next write.
//
// It returns the names ("workspace/processor") of the processors it stopped, sorted. It is
// race-free with Start: a start that read the role before the change holds the processor's
// lock until it runs, and RoleChanged takes that lock before it checks; a start after it reads
// the changed role. sp.process() runs are not checked: they end with their cursor.
func (m *Manager) RoleChanged(name string) []string {
	m.roleGen.Add(1)
	m.mu.Lock()
	procs := make([]*proc, 0, len(m.procs))
	for _, p := range m.procs {
		if !p.ephemeral {
			procs = append(procs, p)
		}
	}
	m.mu.Unlock()
	var stopped []string
	for _, p := range procs {
		if ws, proc, ok := m.recheck(p, name); ok {
			stopped = append(stopped, ws+"/"+proc)
		}
	}
	sort.Strings(stopped)
	return stopped
}

// rolesGeneration counts RoleChanged calls: a connectors.Env's RolesGeneration.
func (m *Manager) rolesGeneration() uint64 { return m.roleGen.Load() }

// recheck checks one processor after custom role name changed and fails it if the role no
// longer allows it; ok reports that it did.
func (m *Manager) recheck(p *proc, name string) (ws, proc string, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rec := p.rec
	if rec.State != store.StateStarted || p.run == nil || !m.usesRole(rec, name) {
		return "", "", false
	}
	_, e := m.validate(rec.Workspace, rec.Pipeline, true, rec.DLQ)
	if e == nil {
		return "", "", false
	}
	// No final checkpoint: nothing more is written as the old role. A write already under way
	// is let finish, so that none lands after the change is answered.
	p.run.halt()
	p.run = nil
	rec.State = store.StateFailed
	rec.ErrorMsg = fmt.Sprintf("stopped because custom role %s changed: %s", name, e.Msg)
	rec.ErrorCode, rec.ErrorRetryable = int32(e.Code), false
	rec.LastStateChange = time.Now().UTC()
	if err := m.put(rec); err != nil {
		m.log.Error("could not record a processor failure", "workspace", rec.Workspace, "processor", rec.Name, "err", err)
	}
	p.rec = rec
	p.stats.setState(rec.State)
	m.log.Warn("processor failed: its execute-as role no longer allows it", "workspace", rec.Workspace, "processor", rec.Name,
		"role", name, "code", int32(e.Code), "codeName", e.Code.Name(), "errorMsg", rec.ErrorMsg)
	go m.closeTaps(p)
	return rec.Workspace, rec.Name, true
}

// usesRole reports whether a processor's pipeline or dead-letter queue uses a Cluster
// connection whose CUSTOM execute-as role is name or inherits it through custom roles.
func (m *Manager) usesRole(rec store.Processor, name string) bool {
	var conns []store.Connection
	if err := m.cfg.Store.View(func(tx *store.Txn) (err error) { conns, err = tx.Connections(rec.Workspace); return err }); err != nil {
		// Unreadable: check the processor anyway rather than let a revoked role run on.
		return true
	}
	pipe := bson.RawValue{Type: bson.TypeArray, Value: rec.Pipeline}
	for _, c := range conns {
		if c.Cluster == nil || c.Cluster.DBRoleToExecute.Type != "CUSTOM" || !m.reaches(c.Cluster.DBRoleToExecute.Role, name, map[string]bool{}) {
			continue
		}
		if (rec.DLQ != nil && rec.DLQ.ConnectionName == c.Name) || usesConnection(pipe, c.Name) {
			return true
		}
	}
	return false
}

// reaches reports whether custom role from is target or inherits it, directly or through other
// custom roles.
func (m *Manager) reaches(from, target string, seen map[string]bool) bool {
	if from == target {
		return true
	}
	if seen[from] {
		return false
	}
	seen[from] = true
	r, ok := m.roles(from)
	if !ok {
		return false
	}
	for _, ir := range r.InheritedRoles {
		if m.reaches(ir.Role, target, seen) {
			return true
		}
	}
	return false
}
