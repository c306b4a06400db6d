package jute

import "fmt"

// Op is a request type (the "type" field of a RequestHeader).
type Op = int32

// Opcodes of ZooKeeper 3.8 (ZooDefs.OpCode).
const (
	OpNotification         Op = 0
	OpCreate               Op = 1
	OpDelete               Op = 2
	OpExists               Op = 3
	OpGetData              Op = 4
	OpSetData              Op = 5
	OpGetACL               Op = 6
	OpSetACL               Op = 7
	OpGetChildren          Op = 8
	OpSync                 Op = 9
	OpPing                 Op = 11
	OpGetChildren2         Op = 12
	OpCheck                Op = 13
	OpMulti                Op = 14
	OpCreate2              Op = 15
	OpReconfig             Op = 16
	OpCheckWatches         Op = 17
	OpRemoveWatches        Op = 18
	OpCreateContainer      Op = 19
	OpDeleteContainer      Op = 20
	OpCreateTTL            Op = 21
	OpMultiRead            Op = 22
	OpAuth                 Op = 100
	OpSetWatches           Op = 101
	OpSASL                 Op = 102
	OpGetEphemerals        Op = 103
	OpGetAllChildrenNumber Op = 104
	OpSetWatches2          Op = 105
	OpAddWatch             Op = 106
	OpWhoAmI               Op = 107
	OpCreateSession        Op = -10
	OpCloseSession         Op = -11
	OpError                Op = -1
)

var opNames = map[Op]string{
	OpNotification: "notification", OpCreate: "create", OpDelete: "delete", OpExists: "exists",
	OpGetData: "getData", OpSetData: "setData", OpGetACL: "getACL", OpSetACL: "setACL",
	OpGetChildren: "getChildren", OpSync: "sync", OpPing: "ping", OpGetChildren2: "getChildren2",
	OpCheck: "check", OpMulti: "multi", OpCreate2: "create2", OpReconfig: "reconfig",
	OpCheckWatches: "checkWatches", OpRemoveWatches: "removeWatches", OpCreateContainer: "createContainer",
	OpDeleteContainer: "deleteContainer", OpCreateTTL: "createTTL", OpMultiRead: "multiRead",
	OpAuth: "auth", OpSetWatches: "setWatches", OpSASL: "sasl", OpGetEphemerals: "getEphemerals",
	OpGetAllChildrenNumber: "getAllChildrenNumber", OpSetWatches2: "setWatches2", OpAddWatch: "addWatch",
	OpWhoAmI: "whoAmI", OpCreateSession: "createSession", OpCloseSession: "closeSession", OpError: "error",
}

// OpName returns the ZooKeeper name of an opcode.
func OpName(op Op) string {
	if s, ok := opNames[op]; ok {
		return s
	}
	return fmt.Sprintf("op(%d)", op)
}

// Special xids.
const (
	XidNotification int32 = -1
	XidPing         int32 = -2
	XidAuth         int32 = -4
	XidSetWatches   int32 = -8
)

// Err is a ZooKeeper error code (KeeperException.Code).
type Err int32

// Error codes of ZooKeeper 3.8.
const (
	ErrOK                       Err = 0
	ErrSystemError              Err = -1
	ErrRuntimeInconsistency     Err = -2
	ErrDataInconsistency        Err = -3
	ErrConnectionLoss           Err = -4
	ErrMarshallingError         Err = -5
	ErrUnimplemented            Err = -6
	ErrOperationTimeout         Err = -7
	ErrBadArguments             Err = -8
	ErrUnknownSession           Err = -12
	ErrNewConfigNoQuorum        Err = -13
	ErrReconfigInProgress       Err = -14
	ErrAPIError                 Err = -100
	ErrNoNode                   Err = -101
	ErrNoAuth                   Err = -102
	ErrBadVersion               Err = -103
	ErrNoChildrenForEphemerals  Err = -108
	ErrNodeExists               Err = -110
	ErrNotEmpty                 Err = -111
	ErrSessionExpired           Err = -112
	ErrInvalidCallback          Err = -113
	ErrInvalidACL               Err = -114
	ErrAuthFailed               Err = -115
	ErrSessionMoved             Err = -118
	ErrNotReadOnly              Err = -119
	ErrEphemeralOnLocalSession  Err = -120
	ErrNoWatcher                Err = -121
	ErrRequestTimeout           Err = -122
	ErrReconfigDisabled         Err = -123
	ErrSessionClosedRequireSASL Err = -124
	ErrQuotaExceeded            Err = -125
	ErrThrottled                Err = -127
)

var errNames = map[Err]string{
	ErrOK: "OK", ErrSystemError: "SystemError", ErrRuntimeInconsistency: "RuntimeInconsistency",
	ErrDataInconsistency: "DataInconsistency", ErrConnectionLoss: "ConnectionLoss",
	ErrMarshallingError: "MarshallingError", ErrUnimplemented: "Unimplemented",
	ErrOperationTimeout: "OperationTimeout", ErrBadArguments: "BadArguments",
	ErrUnknownSession: "UnknownSession", ErrNewConfigNoQuorum: "NewConfigNoQuorum",
	ErrReconfigInProgress: "ReconfigInProgress", ErrAPIError: "APIError", ErrNoNode: "NoNode",
	ErrNoAuth: "NoAuth", ErrBadVersion: "BadVersion", ErrNoChildrenForEphemerals: "NoChildrenForEphemerals",
	ErrNodeExists: "NodeExists", ErrNotEmpty: "NotEmpty", ErrSessionExpired: "SessionExpired",
	ErrInvalidCallback: "InvalidCallback", ErrInvalidACL: "InvalidACL", ErrAuthFailed: "AuthFailed",
	ErrSessionMoved: "SessionMoved", ErrNotReadOnly: "NotReadOnly",
	ErrEphemeralOnLocalSession: "EphemeralOnLocalSession", ErrNoWatcher: "NoWatcher",
	ErrRequestTimeout: "RequestTimeout", ErrReconfigDisabled: "ReconfigDisabled",
	ErrSessionClosedRequireSASL: "SessionClosedRequireSasl", ErrQuotaExceeded: "QuotaExceeded",
	ErrThrottled: "Throttled",
}

// Error implements error, so a code can travel as a Go error.
func (e Err) Error() string {
	if s, ok := errNames[e]; ok {
		return s
	}
	return fmt.Sprintf("ZooKeeperError(%d)", int32(e))
}

// Create modes (CreateMode.toFlag).
const (
	FlagPersistent                  int32 = 0
	FlagEphemeral                   int32 = 1
	FlagPersistentSequential        int32 = 2
	FlagEphemeralSequential         int32 = 3
	FlagContainer                   int32 = 4
	FlagPersistentWithTTL           int32 = 5
	FlagPersistentSequentialWithTTL int32 = 6
)

// Permission bits of an ACL.
const (
	PermRead   int32 = 1 << 0
	PermWrite  int32 = 1 << 1
	PermCreate int32 = 1 << 2
	PermDelete int32 = 1 << 3
	PermAdmin  int32 = 1 << 4
	PermAll    int32 = 0x1f
)

// Watcher event types (Watcher.Event.EventType).
const (
	EventNone                   int32 = -1
	EventNodeCreated            int32 = 1
	EventNodeDeleted            int32 = 2
	EventNodeDataChanged        int32 = 3
	EventNodeChildrenChanged    int32 = 4
	EventDataWatchRemoved       int32 = 5
	EventChildWatchRemoved      int32 = 6
	EventPersistentWatchRemoved int32 = 7
)

// Keeper states carried in watcher events.
const (
	StateDisconnected  int32 = 0
	StateSyncConnected int32 = 3
	StateAuthFailed    int32 = 4
	StateConnectedRO   int32 = 5
	StateExpired       int32 = -112
	StateClosed        int32 = 7
)

// Watcher types for checkWatches and removeWatches.
const (
	WatcherTypeChildren int32 = 1
	WatcherTypeData     int32 = 2
	WatcherTypeAny      int32 = 3
)

// Modes of addWatch.
const (
	AddWatchPersistent          int32 = 0
	AddWatchPersistentRecursive int32 = 1
)
