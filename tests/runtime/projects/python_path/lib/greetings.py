HELLO = "hello from lib/ on predictor.python_path"
