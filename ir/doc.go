// Package ir is mmadac's graph intermediate representation. It contains
// element types and shapes with symbolic dimensions, SSA values, nodes and
// graphs, the builder API, the op table with its type rules, Verify, and a
// text form that Print writes and Parse reads back.
//
// A Graph is a function from named inputs to named outputs. Its values are
// defined once, as a graph input, a stored parameter (a checkpoint weight
// referenced lazily through a WeightSource), a constant, or a result of a
// node. Nodes are kept in topological order. Every op is described by an
// OpDef in one table (ops.go, fused.go), whose Infer function computes the
// result types from the operands and attributes. The builder, Verify and
// Parse all run that same function, so a type is never trusted without
// being inferred again.
//
// # Text format
//
// One graph is written as one block, one statement a line:
//
//	graph @tiny {
//	  meta "seq" = "8"
//	  input %input_ids : i64[batch,seq]
//	  param %model.transformer.wte.weight : bf16[320,64]
//	  const %0 : f32[] = [0.125]
//	  const %1 : f32[100] = dense<sha256:60aa8a63ee713ea5>
//	  %2 = cast %model.transformer.wte.weight {to=f32} : f32[320,64]
//	  %3 = gather %2, %input_ids {axis=0} : f32[batch,seq,64]
//	  %4 = mul %3, %0 : f32[batch,seq,64]
//	  %5 = reduce_mean %4 {axes=[-1], keepdims=1} : f32[batch,seq,1]
//	  output scaled = %4
//	  output mean = %5
//	}
//
// A node with several results names them all and lists their types in the
// same order: "%6, %7 = op %5 : f32[2], f32[2]".
//
// The grammar, in the EBNF notation of the Go specification, with eol
// standing for a line end:
//
//	graph      = "graph" "@" [ word ] "{" eol { statement eol } "}" { eol } .
//	statement  = meta | input | param | const | node | output .
//	meta       = "meta" string "=" string .
//	input      = "input" value ":" type .
//	param      = "param" value ":" type .
//	const      = "const" value ":" type "=" constdata .
//	constdata  = "[" [ element { "," element } ] "]"
//	           | "dense" "<" ( "sha256" ":" hexdigits | "missing" ) ">" .
//	node       = value { "," value } "=" opname [ value { "," value } ]
//	             [ "{" [ attr { "," attr } ] "}" ] ":" type { "," type } .
//	attr       = word "=" attrvalue .
//	attrvalue  = integer | float | string | dtype
//	           | "[" [ integer { "," integer } ] "]"
//	           | "[" float { "," float } "]" .
//	output     = "output" word "=" value .
//	type       = dtype "[" [ dim { "," dim } ] "]" .
//	dim        = integer | symbol .
//	value      = "%" word .
//
// Lexical rules:
//
//   - A word is a run of ASCII letters, digits and the bytes _ . - +. Value
//     names, the graph name, op names, attribute names, output names,
//     numbers, dtype names and symbols are all words, so a checkpoint name
//     such as %model.transformer.blocks.0.q_proj.weight is one token.
//   - A string is a double-quoted Go string literal on one line, with Go's
//     escapes (strconv.Quote writes it, strconv.Unquote reads it).
//   - Spaces, tabs and carriage returns separate tokens. "//" starts a
//     comment that runs to the end of the line. Blank lines are ignored.
//   - An integer is an optionally signed decimal int64.
//   - A float starts with a digit, a sign or '.', and contains '.' or an
//     exponent ("1.0", "-0.0", "1e-05"), or is inf, -inf or nan. The
//     printer writes every float that way, so 2.0 and 2 never read alike.
//   - A dtype is one of f32, f16, bf16, f64, i64, i32, bool.
//   - A symbol (a symbolic dimension such as batch or seq) starts with a
//     letter or '_' and continues with letters, digits, '_' or '.'.
//
// Meaning:
//
//   - Statements come in the order meta, input, param, const, node, output;
//     Parse rejects another order. Meta keys are sorted by the printer.
//   - Inputs and parameters print under their names. Every other value
//     (constants, node results, and inputs or parameters without a name) is
//     numbered %0, %1, ... in order of appearance, so two graphs that differ
//     only in the history of their value IDs print identically. Parse
//     accepts any word as a label, keeps the labels of inputs and
//     parameters as their names unless the label is digits only, and
//     renumbers the rest when printed again. A value must be defined on an
//     earlier line than its uses, and a label is defined once.
//   - Parameters read back with a nil Source: the text holds no weight data.
//   - Constants of at most MaxInlineConst elements print their values in
//     row-major order: floats as above, integers in decimal, bools as true
//     or false, and f16 and bf16 as their bit patterns in hexadecimal
//     (0x3c00). Parse also accepts a decimal value for f16 and bf16 and
//     rounds it to nearest, ties to even. Larger constants print as
//     dense<sha256:...>, the first 16 hex digits of the SHA-256 of their
//     little-endian bytes (see Digest); Parse turns the digest into a
//     Tensor whose Data is OpaqueData, which prints identically. A nil
//     constant tensor prints as dense<missing> and reads back as nil.
//   - Attributes print sorted by name. A list is an integer list or a float
//     list; the empty list [] reads back as a nil []int64 because the text
//     cannot tell the two apart.
//   - After a node's line is read, the op's Infer runs on the operands and
//     attributes, and each printed result type must equal the inferred one.
//
// Print(Parse(Print(g))) == Print(g) holds for every graph whose names fit
// the rules above (FuzzParse and the tests check it on hand-written graphs
// and on the MMaDA transformer).
//
// NOTE: the printer writes names as they are, so a graph whose input,
// parameter, output or graph name contains a byte outside the word set
// (a space, ':', ','), an output with an empty name, an input or parameter
// named with digits only, or a symbol that looks like an integer, prints
// text that Parse rejects or reads differently.
//
// # Error handling
//
// Functions that fail on user input (a text, a graph from a pass) return
// errors. Panics mark a caller's misuse, such as a Tensor accessor of the
// wrong type, and the one recovered panic below:
//
//   - Model builders call Graph.Op and Graph.AddNode, which panic with a
//     *BuildError (the op and the rule its operands break) when an op is
//     unknown or its operands do not fit. Build runs the building function
//     and recovers that panic into the returned error "building graph NAME:
//     OP: MESSAGE"; any other panic is a bug and is not recovered.
//   - Verify returns every broken invariant of a graph, joined into one
//     error. It runs the op table's type rules directly, so an attribute of
//     the wrong kind (an int64 attribute set to a float by a pass) panics
//     there.
//   - Parse and ParseString return a *ParseError with the 1-based line and
//     column and a message that says what was expected there ("4:24: op
//     matmul: result %0 is printed as f32[2,3], but type inference gives
//     f32[2,4]"). Inside the parser the first error stops parsing by a
//     panic with the *ParseError, recovered at ParseString. A type rule
//     that panics on an attribute of the wrong kind (Attrs.Int on a float,
//     for example) is recovered into a *ParseError that lists the
//     attribute kinds.
package ir
