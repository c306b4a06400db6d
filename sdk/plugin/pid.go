package plugin

// Pid is the operating-system process id of the running plugin, or 0 when
// none runs (before a restart after a crash, or after Close). Tests kill it
// with SIGKILL to crash the plugin for real: Kill asks it to stop first.
func (p *Process[T]) Pid() int {
	p.sem <- struct{}{}
	defer func() { <-p.sem }()
	if p.client == nil || p.client.Exited() {
		return 0
	}
	if rc := p.client.ReattachConfig(); rc != nil {
		return rc.Pid
	}
	return 0
}
