// Shared by the compile-time tests in test/types/: checked by tsc, never executed.
export type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false

/** expectType<Expected>()(value) compiles only when the value's type is exactly Expected. */
export function expectType<Expected> () {
  return <Actual>(_value: Actual, ..._exact: Equal<Actual, Expected> extends true ? [] : ['type mismatch']): void => {}
}
