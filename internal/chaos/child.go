package chaos

// ChildEnv is set (to the path of the child's configuration) in the environment of a child client.
const ChildEnv = "CHAOS_CHILD"

// RunChild runs a child client and returns its exit code.
func RunChild() int { return 2 }
