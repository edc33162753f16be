package policy

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"

	"github.com/parley-chatops/parley/internal/action"
)

// Limits on conditions. Policies are written by operators, but a policy
// check runs on every request, so a condition must stay cheap.
const (
	maxConditionLen  = 4096   // bytes of CEL source
	maxConditionCost = 10_000 // CEL runtime cost units per evaluation
)

// Variables a condition may use.
const (
	varAction  = "action"
	varParams  = "params"
	varSubject = "subject"
	varChannel = "channel"
	varGroups  = "groups"
	varKind    = "kind"
)

// newEnv returns the CEL environment conditions are compiled in.
func newEnv() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable(varAction, cel.StringType),
		cel.Variable(varParams, cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable(varSubject, cel.StringType),
		cel.Variable(varChannel, cel.StringType),
		cel.Variable(varGroups, cel.ListType(cel.StringType)),
		cel.Variable(varKind, cel.StringType),
		cel.ParserExpressionSizeLimit(maxConditionLen),
		cel.ParserRecursionLimit(64),
	)
}

// paramsType names the type params has when a condition is type-checked:
// a struct whose fields are the parameters of the rule's actions, typed
// from their specs.
const paramsType = "parley.Params"

// paramTypes are the CEL types of the parameters a condition may read.
type paramTypes map[string]*cel.Type

// celTypeOf is the CEL type of a parameter's validated value: integers are
// int, booleans bool, and strings, enums and durations ("30m") string.
func celTypeOf(t action.ParamType) *cel.Type {
	switch t {
	case action.Int:
		return cel.IntType
	case action.Bool:
		return cel.BoolType
	case action.String, action.Enum, action.Duration:
		return cel.StringType
	}
	return cel.DynType
}

// paramsOf is the parameters of specs, each with its type; a name two
// actions type differently is dyn (checked only when it runs).
func paramsOf(specs []action.Spec) paramTypes {
	out := paramTypes{}
	for _, s := range specs {
		for _, p := range s.Params {
			t := celTypeOf(p.Type)
			if prev, ok := out[p.Name]; ok && !prev.IsExactType(t) {
				t = cel.DynType
			}
			out[p.Name] = t
		}
	}
	return out
}

// key is a stable text form of the types, for sharing environments.
func (pt paramTypes) key() string {
	var b strings.Builder
	for _, n := range slices.Sorted(maps.Keys(pt)) {
		b.WriteString(n + ":" + pt[n].String() + ";")
	}
	return b.String()
}

// paramsProvider is the type provider of a typed environment: the
// standard one, plus paramsType with the rule's parameters as fields.
type paramsProvider struct {
	types.Provider
	fields paramTypes
}

func (p *paramsProvider) FindStructType(name string) (*types.Type, bool) {
	if name == paramsType {
		return types.NewTypeTypeWithParam(types.NewObjectType(paramsType)), true
	}
	return p.Provider.FindStructType(name)
}

func (p *paramsProvider) FindStructFieldNames(name string) ([]string, bool) {
	if name == paramsType {
		return slices.Sorted(maps.Keys(p.fields)), true
	}
	return p.Provider.FindStructFieldNames(name)
}

func (p *paramsProvider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	if name == paramsType {
		t, ok := p.fields[field]
		if !ok {
			return nil, false
		}
		return &types.FieldType{Type: t}, true
	}
	return p.Provider.FindStructFieldType(name, field)
}

// typedEnv is newEnv with params typed: it is used to check conditions
// at load, never to run them (a request's params arrive as a map).
func typedEnv(fields paramTypes) (*cel.Env, error) {
	reg, err := types.NewRegistry()
	if err != nil {
		return nil, err
	}
	return cel.NewEnv(
		cel.CustomTypeProvider(&paramsProvider{Provider: reg, fields: fields}),
		cel.Variable(varAction, cel.StringType),
		cel.Variable(varParams, cel.ObjectType(paramsType)),
		cel.Variable(varSubject, cel.StringType),
		cel.Variable(varChannel, cel.StringType),
		cel.Variable(varGroups, cel.ListType(cel.StringType)),
		cel.Variable(varKind, cel.StringType),
		cel.ParserExpressionSizeLimit(maxConditionLen),
		cel.ParserRecursionLimit(64),
	)
}

// typeCheck checks src with params typed (fields, in env): `params.replicas
// > "x"` is an error here, where with params a map of dyn it would load
// and then never match. params["name"] is read as params.name, so both
// forms are typed. Each problem says the types of the params it reads.
//
// A condition that uses params as a whole map (params[someVariable],
// "replicas" in params, size(params)) is left to the untyped check: a
// struct has no such operations, and the condition is not wrong.
func typeCheck(env *cel.Env, fields paramTypes, src string) []celIssue {
	parsed, iss := env.Parse(src)
	if iss != nil && iss.Err() != nil {
		return issuesOf(iss)
	}
	fac := celast.NewExprFactory()
	isParams := func(e celast.Expr) bool { return e.Kind() == celast.IdentKind && e.AsIdent() == varParams }
	celast.PostOrderVisit(parsed.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() != celast.CallKind {
			return
		}
		c := e.AsCall()
		if c.FunctionName() != operators.Index || len(c.Args()) != 2 || !isParams(c.Args()[0]) || c.Args()[1].Kind() != celast.LiteralKind {
			return
		}
		if name, ok := c.Args()[1].AsLiteral().(types.String); ok {
			e.SetKindCase(fac.NewSelect(e.ID(), c.Args()[0], string(name)))
		}
	}))
	uses, fieldUses := 0, 0
	celast.PreOrderVisit(parsed.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		switch {
		case isParams(e):
			uses++
		case e.Kind() == celast.SelectKind && isParams(e.AsSelect().Operand()):
			fieldUses++
		}
	}))
	if uses != fieldUses {
		return nil
	}
	if _, iss := env.Check(parsed); iss != nil && iss.Err() != nil {
		out := issuesOf(iss)
		var typed []string
		for _, name := range referencedParams(parsed.NativeRep()) {
			if t, ok := fields[name]; ok && !t.IsExactType(cel.DynType) {
				typed = append(typed, fmt.Sprintf("params.%s is %s", name, t))
			}
		}
		if len(typed) > 0 {
			for i := range out {
				out[i].msg += "; " + strings.Join(typed, ", ") + " (typed from the action specs)"
			}
		}
		return out
	}
	return nil
}

// issuesOf turns CEL issues into celIssues with their line and column.
func issuesOf(iss *cel.Issues) []celIssue {
	var out []celIssue
	for _, e := range iss.Errors() {
		line := 1
		if e.Location != nil && e.Location.Line() > 0 {
			line = e.Location.Line()
		}
		col := 0
		if e.Location != nil {
			col = e.Location.Column() + 1
		}
		out = append(out, celIssue{line: line, msg: fmt.Sprintf("%s (column %d)", e.Message, col)})
	}
	return out
}

// condition is a compiled `when` expression.
type condition struct {
	src string
	prg cel.Program
}

// celIssue is one compile problem, with its line inside the expression.
type celIssue struct {
	line int // 1-based line within the expression
	msg  string
}

// typing is what a condition is type-checked with: the parameters'
// types and the environment declaring them (typedEnv).
type typing struct {
	fields paramTypes
	env    *cel.Env
}

// compileCondition compiles src and checks it yields a bool. paramNames, when
// not nil, are the parameters the rule's actions have: a reference to any
// other params.NAME is a typo that would silently never match, so it is an
// error. typed, when not nil, has those parameters typed from the action
// specs: a type error is an error too.
func compileCondition(env *cel.Env, src string, paramNames []string, actions string, typed *typing) (*condition, []celIssue) {
	if strings.TrimSpace(src) == "" {
		return nil, []celIssue{{line: 1, msg: "empty condition; omit when to match always"}}
	}
	if len(src) > maxConditionLen {
		return nil, []celIssue{{line: 1, msg: fmt.Sprintf("condition longer than %d bytes", maxConditionLen)}}
	}
	ast, iss := env.Compile(src)
	if iss != nil && iss.Err() != nil {
		return nil, issuesOf(iss)
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
		return nil, []celIssue{{line: 1, msg: fmt.Sprintf("condition yields %s, want a bool", t)}}
	}
	if paramNames != nil {
		var out []celIssue
		for _, name := range referencedParams(ast.NativeRep()) {
			if !slices.Contains(paramNames, name) {
				out = append(out, celIssue{line: 1, msg: fmt.Sprintf("params.%s is not a parameter of %s (parameters: %s)",
					name, actions, strings.Join(paramNames, ", "))})
			}
		}
		if out != nil {
			return nil, out
		}
	}
	if typed != nil {
		if out := typeCheck(typed.env, typed.fields, src); out != nil {
			return nil, out
		}
	}
	prg, err := env.Program(ast, cel.CostLimit(maxConditionCost))
	if err != nil {
		return nil, []celIssue{{line: 1, msg: err.Error()}}
	}
	return &condition{src: src, prg: prg}, nil
}

// referencedParams lists the parameter names a condition reads as
// params.NAME, has(params.NAME) or params["NAME"].
func referencedParams(a *celast.AST) []string {
	var names []string
	add := func(n string) {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	isParams := func(e celast.Expr) bool {
		return e.Kind() == celast.IdentKind && e.AsIdent() == varParams
	}
	celast.PreOrderVisit(a.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		switch e.Kind() {
		case celast.SelectKind:
			if s := e.AsSelect(); isParams(s.Operand()) {
				add(s.FieldName())
			}
		case celast.CallKind:
			c := e.AsCall()
			if c.FunctionName() == operators.Index && len(c.Args()) == 2 && isParams(c.Args()[0]) &&
				c.Args()[1].Kind() == celast.LiteralKind {
				if s, ok := c.Args()[1].AsLiteral().(types.String); ok {
					add(string(s))
				}
			}
		}
	}))
	return names
}

// eval runs the condition. An error (a missing parameter, a type mismatch,
// the cost limit) is returned, never a panic.
func (c *condition) eval(vars interpreter.Activation) (bool, error) {
	out, _, err := c.prg.Eval(vars)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("condition yielded %s, want a bool", out.Type().TypeName())
	}
	return bool(b), nil
}

// activation builds the variables of a request: a struct that answers
// the condition's lookups, not a map built for every request.
func activation(in Input, kind action.Kind, w *who) (interpreter.Activation, error) {
	groups := w.groupList
	if len(w.platformGroups) > 0 {
		groups = slices.Concat(w.groupList, w.platformGroups) // platform groups sorted
	}
	return &requestVars{in: in, kind: string(kind), groups: groups}, nil
}

// requestVars are the variables of one request (interpreter.Activation).
type requestVars struct {
	in     Input
	kind   string
	groups []string
	params map[string]any // converted on first use
}

func (v *requestVars) ResolveName(name string) (any, bool) {
	switch name {
	case varAction:
		return v.in.Action, true
	case varParams:
		if v.params == nil {
			v.params = celParams(v.in.Params)
		}
		return v.params, true
	case varSubject:
		return v.in.Subject, true
	case varChannel:
		return v.in.Channel, true
	case varGroups:
		if v.groups == nil {
			return []string{}, true
		}
		return v.groups, true
	case varKind:
		return v.kind, true
	}
	return nil, false
}

func (v *requestVars) Parent() interpreter.Activation { return nil }

// celParams converts parameter values to the types CEL expects: every
// integer becomes int64 so `params.replicas <= 50` compares ints with ints.
func celParams(p action.Params) map[string]any {
	out := make(map[string]any, len(p))
	for k, v := range p {
		switch x := v.(type) {
		case nil:
			continue
		case string, bool, int64, float64:
			out[k] = x
		case int:
			out[k] = int64(x)
		case int8:
			out[k] = int64(x)
		case int16:
			out[k] = int64(x)
		case int32:
			out[k] = int64(x)
		case uint:
			out[k] = clampUint(uint64(x))
		case uint8:
			out[k] = int64(x)
		case uint16:
			out[k] = int64(x)
		case uint32:
			out[k] = int64(x)
		case uint64:
			out[k] = clampUint(x)
		case float32:
			out[k] = float64(x)
		case fmt.Stringer:
			out[k] = x.String()
		default:
			out[k] = fmt.Sprint(x)
		}
	}
	return out
}

func clampUint(u uint64) int64 {
	if u > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(u)
}
