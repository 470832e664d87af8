package alerting

import "errors"

// Errors returned by the operations on alerts.
var (
	// ErrNotFound means no alert has the given id.
	ErrNotFound = errors.New("alerting: alert not found")
	// ErrNotFiring means the alert cannot be acknowledged because it is not
	// firing (it is pending or already resolved).
	ErrNotFiring = errors.New("alerting: alert is not firing")
	// ErrAlreadyAcknowledged means someone acknowledged the alert before.
	ErrAlreadyAcknowledged = errors.New("alerting: alert is already acknowledged")
	// ErrAlreadyResolved means the alert is closed; a new occurrence of its
	// condition opens a new alert.
	ErrAlreadyResolved = errors.New("alerting: alert is already resolved")
	// ErrMissingActor means a human action was given no name to record.
	ErrMissingActor = errors.New("alerting: who acted must be given")
	// ErrUnavailable means a shared StateStore (the cluster's PostgreSQL)
	// could not be reached or did not confirm: nothing was changed, or
	// the change is not known to have been; retry when it is back.
	ErrUnavailable = errors.New("alerting: the alert store is unavailable")
)

// Errors returned while building an evaluator or a dispatcher.
var (
	// ErrInvalidRule wraps every problem Validate finds in a rule.
	ErrInvalidRule = errors.New("alerting: invalid rule")
	// ErrMissingSource means a rule needs a data source the options lack.
	ErrMissingSource = errors.New("alerting: a rule needs a data source that was not given")
	// ErrInvalidReceiver means a receiver or notifier is misconfigured.
	ErrInvalidReceiver = errors.New("alerting: invalid receiver")
)
