package cluster

// SetShipAfterCommit makes fn run between a shipping round's commit and
// its cursor update; an error from fn ends the round there, as a crash
// at that point would.
func (s *Shipper) SetShipAfterCommit(fn func() error) { s.afterCommit = fn }
